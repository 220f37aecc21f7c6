#!/usr/bin/env bash
# Starts servitord on the example working directory shipped in the repository, with
# the web UI, in the foreground (Ctrl-C stops it). Extra arguments go to servitord.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p servitord -p servitorctl
echo "servitord on $repo/example; in another terminal:"
echo "  curl --unix-socket $repo/example/sockets/servitor.sock http://localhost/api/jobs/get_list"
exec env SERVITOR_UI_ROOT="$repo/ui" "$repo/target/release/servitord" --workdir "$repo/example" "$@"
