#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, every test (daemon, CLI,
# faults and load, installer, web UI in headless Chromium), a smoke run of both
# benchmarks, the fuzz targets for a bounded time, and schemathesis against the API.
#
#   scripts/test.sh            everything (~25 min on 2 cores, from a fresh clone)
#   FUZZ_SECONDS=60 SCHEMATHESIS_SECONDS=120 scripts/test.sh   # longer fuzzing
#
# The browser tests need Debian's chromium and chromium-driver; as root on Debian this
# installs them (and systemd, whose systemd-analyze checks the installer's unit) when
# they are missing. The Slurm tests need a cluster: see below.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v systemd-analyze >/dev/null || missing+=(systemd)
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "test: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "test: missing ${missing[*]} (apt-get install them, or set SERVITOR_SKIP_BROWSER_TESTS=1)" >&2
  fi
fi

step() { echo; echo "=== $* ==="; }

# The Slurm tests need a cluster: unless SLURM_CONF names one, the local one of
# scripts/slurm-local.sh (installed as root on Debian), stopped at the end if
# started here. Where sbatch is not installed, SERVITOR_SKIP_SLURM_TESTS=1 skips them.
if [[ -z ${SLURM_CONF:-} && ${SERVITOR_SKIP_SLURM_TESTS:-} != 1 ]]; then
  if ! scripts/slurm-local.sh status >/dev/null 2>&1; then
    trap 'scripts/slurm-local.sh stop' EXIT
  fi
  eval "$(scripts/slurm-local.sh start)"
fi

step "formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "tests"
cargo test --workspace

# One invocation builds both release binaries with the same features, so neither
# benchmark builds the other package's binary again (--no-build).
step "benchmarks, smoke sizes: the daemon's, and the web UI's in headless Chromium"
cargo bench --workspace --bench e2e --bench ui -- --smoke --no-build

step "fuzzing, ${FUZZ_SECONDS:-20} s per target"
scripts/fuzz.sh "${FUZZ_SECONDS:-20}"

step "schemathesis against the OpenAPI description, ${SCHEMATHESIS_SECONDS:-60} s"
scripts/schemathesis.sh "${SCHEMATHESIS_SECONDS:-60}"
