#!/usr/bin/env bash
# Fuzzes servitord's parsers of untrusted text: builds every target of servitord/fuzz,
# runs each for SECONDS (default 60; one target per CPU at a time), prints how many
# inputs each one ran, and exits non-zero if any target crashed (a panic, a failed
# property, a timeout or an out-of-memory), naming the input that did it.
#
#   scripts/fuzz.sh [SECONDS]
#
# Each target starts from its committed inputs, the hand-written servitord/fuzz/seeds/
# <target>/ and the minimised servitord/fuzz/corpus/<target>/, which it only reads;
# what it finds goes to target/fuzz/corpus/<target>/ (kept between runs). To grow the
# committed corpus, see servitord/fuzz/README.md.
#
# cargo-fuzz passes nightly-only flags to rustc; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain take them.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS]  (seconds per target, default 60)" >&2
  exit 2
fi

CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

export RUSTC_BOOTSTRAP=1
fuzz_dir=servitord/fuzz
work=target/fuzz
# The same options for build and run, or the run builds again.
options=(--fuzz-dir "$fuzz_dir" --target-dir "$work/build" --release --debug-assertions)

cargo fuzz build "${options[@]}"
mapfile -t targets < <(cargo fuzz list --fuzz-dir "$fuzz_dir")

# Runs one target; its exit status goes to $work/logs/<target>.status.
fuzz_target() {
  local target=$1
  local found="$work/corpus/$target" artifacts="$work/artifacts/$target"
  local log="$work/logs/$target.log" status=0
  local inputs=("$found") committed
  for committed in "$fuzz_dir/corpus/$target" "$fuzz_dir/seeds/$target"; do
    [[ -d $committed ]] && inputs+=("$committed")
  done
  echo "fuzz: $target for ${seconds}s" >&2
  # -max_len: long enough for a 4096-byte job id and a query of 1001 parameters.
  # -timeout: one input taking more than 10 s is a hang, reported as a crash.
  cargo fuzz run "${options[@]}" "$target" "${inputs[@]}" -- \
    -max_total_time="$seconds" -max_len=8192 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
  echo "$status" >"$work/logs/$target.status"
}

# One target per CPU at a time: each libFuzzer process is single-threaded.
at_once=$(nproc)
for target in "${targets[@]}"; do
  mkdir -p "$work/corpus/$target" "$work/artifacts/$target" "$work/logs"
  rm -f "$work/logs/$target.status"
  while (($(jobs -rp | wc -l) >= at_once)); do wait -n || true; done
  fuzz_target "$target" &
done
wait

failed=()
summary=()
for target in "${targets[@]}"; do
  found="$work/corpus/$target"
  artifacts="$work/artifacts/$target"
  log="$work/logs/$target.log"
  status=$(cat "$work/logs/$target.status" 2>/dev/null || echo "?")
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  corpus_size=$(find "$found" -type f | wc -l)
  summary+=("$(printf '%-16s %12s executions  %6s inputs in %s  %s' \
    "$target" "${executions:-?}" "$corpus_size" "$found" "$([[ $status == 0 ]] && echo ok || echo CRASHED)")")
  if [[ $status != 0 ]]; then
    failed+=("$target")
    echo "fuzz: $target failed (exit $status); the end of its log ($log):" >&2
    tail -n 40 "$log" >&2
    # shellcheck disable=SC2012 # libFuzzer names them crash-<sha1>, leak-<sha1>...
    crash=$(ls -t "$artifacts" | head -n 1)
    echo "fuzz: reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir $fuzz_dir $target $artifacts/${crash:-<crash file>}" >&2
  fi
done

echo "fuzz: ${seconds}s per target" >&2
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
