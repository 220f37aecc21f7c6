#!/usr/bin/env bash
# shellcheck disable=SC2016 # the jobs' scripts name their own variables, in single quotes
# Tests the API against its OpenAPI description with schemathesis: a real servitord on
# a temporary working directory (a few harmless jobs, a run of each already done),
# reached over TCP through `servitorctl ui`'s loopback bridge, as a browser would.
# Every answer is checked: no 5xx, status codes, content types and bodies as
# described, 4xx for invalid requests, 405 and `Allow` for other methods...
# Exits non-zero on any failure.
#
#   scripts/schemathesis.sh [MAX_SECONDS]   (default 120: how long schemathesis runs)
#
# SCHEMATHESIS_MAX_EXAMPLES (default 50) bounds the examples per operation and phase;
# SCHEMATHESIS_SEED replays a run (each run prints its seed).
#
# Left out: GET /api/events, which never ends by design (its lines are checked against
# the `Event` schema by servitord/tests/daemon/openapi.rs). logs/get ends: runs here
# last at most a second, and the one that sleeps runs one at a time (`on_busy: skip`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

max_seconds=${1:-120}
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-50}
SCHEMATHESIS_VERSION=4.32.5

venv=$root/target/schemathesis/venv
if ! "$venv/bin/st" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  echo "schemathesis: installing schemathesis $SCHEMATHESIS_VERSION into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build --quiet -p servitord -p servitorctl
bin=$root/target/debug

wd=$(mktemp -d "${TMPDIR:-/tmp}/servitor-schemathesis.XXXXXX")
report=$root/target/schemathesis/report
daemon_pid=
bridge_pid=
cleanup() {
  local status=$?
  set +e
  for pid in $bridge_pid $daemon_pid; do
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [[ $status != 0 ]]; then
    echo "schemathesis: servitord's log:" >&2
    tail -n 40 "$wd/servitord.log" >&2 || true
  fi
  rm -rf "$wd"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits up to 20 s for a command to succeed.
wait_for() {
  local what=$1
  shift
  for _ in $(seq 200); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "schemathesis: timed out waiting for $what" >&2
  return 1
}

# The jobs: names match the examples of the description (demo/greet, hello, and
# execution 1), so that schemathesis reaches real jobs and runs too.
jobs=$wd/config/jobs
mkdir -p "$jobs/demo"
job() {
  printf '#!/bin/sh\n%s\n' "$2" >"$jobs/$1"
  chmod +x "$jobs/$1"
}
job hello 'echo "hello from $SERVITOR_JOB #$SERVITOR_JOB_EXECUTION"'
job demo/greet 'echo "$GREETING, ${NAME:-nobody}! (level $LEVEL)"'
cat >"$jobs/demo/greet.input.json" <<'EOF'
{
  "NAME": {"description": "Who to greet"},
  "GREETING": {"default": "Hello"},
  "LEVEL": {"choices": ["low", "high"], "default": "low"},
  "TOKEN": {"secret": true}
}
EOF
job demo/fail 'echo "about to fail" >&2; exit 3'
job demo/sleep 'echo start; sleep 1; echo done'
cat >"$jobs/demo/sleep.settings.json" <<'EOF'
{"concurrency": 1, "on_busy": "skip", "timeout": "30s"}
EOF

"$bin/servitord" --workdir "$wd" --ui-root "$root/ui" --workers 2 >"$wd/servitord.log" 2>&1 &
daemon_pid=$!
socket=$wd/sockets/servitor.sock
wait_for "servitord" curl -sf --unix-socket "$socket" http://localhost/api/health

"$bin/servitorctl" --workdir "$wd" ui --listen 127.0.0.1:0 >"$wd/bridge.out" 2>&1 &
bridge_pid=$!
wait_for "the bridge" grep -q "http://" "$wd/bridge.out"
base=$(grep -o 'http://[0-9.:]*' "$wd/bridge.out" | head -n 1)
wait_for "the bridge to answer" curl -sf "$base/api/health"

# A run of each job, so that execution 1 exists everywhere; wait until they ended.
for target in 'hello' 'demo%2Fgreet&input_value_NAME=Ada' 'demo%2Ffail' 'demo%2Fsleep'; do
  curl -sf -X POST "$base/api/jobs/run?job_id=$target" >/dev/null
done
ended() {
  for id in hello demo/greet demo/fail demo/sleep; do
    curl -sf "$base/api/jobs/executions/get?job_id=$id&execution_id=1" |
      grep -qE '"status":"(success|failure)"' || return 1
  done
}
wait_for "the first runs to end" ended

# servitord ignores query parameters it does not know, as the old tool did (and inputs
# come as `input_value_<NAME>`, which no description can name): an extra parameter is
# not invalid data, so schemathesis must not expect a 4xx for one.
cat >"$wd/schemathesis.toml" <<'EOF'
[generation]
allow-extra-parameters = false
EOF

echo "schemathesis: testing $base (servitord on $wd) for up to ${max_seconds}s" >&2
rm -rf "$report"
seed_option=()
[[ -n ${SCHEMATHESIS_SEED:-} ]] && seed_option=(--seed "$SCHEMATHESIS_SEED")
status=0
# From target/schemathesis: schemathesis keeps a cache in the current folder.
mkdir -p "$root/target/schemathesis"
cd "$root/target/schemathesis"
"$venv/bin/st" --config-file "$wd/schemathesis.toml" run "$base/api/openapi.json" \
  --checks all \
  --exclude-path /api/events \
  --max-examples "$max_examples" \
  --max-time "$max_seconds" \
  --request-timeout 15 \
  --workers 2 \
  --report junit --report-dir "$report" \
  --no-color \
  --generation-database "$root/target/schemathesis/examples" \
  "${seed_option[@]}" || status=$?
if [[ $status != 0 ]]; then
  echo "schemathesis: FAILED (exit $status); the JUnit report is in $report" >&2
  exit "$status"
fi
