#!/usr/bin/env bash
# Installs Servitor as a systemd service, or updates an installation (run it again).
#
#   scripts/servitor-installer.sh             install or update
#   scripts/servitor-installer.sh uninstall   remove it all but the working directory
#
# Settings, from the environment:
#   SERVITOR_USER          the service's user, created if missing        (root)
#   SERVITOR_UMASK         the service's umask                           (0077)
#   SERVITOR_WORKDIR       the working directory                         (/srv/servitor)
#   SERVITOR_PREFIX        where binaries, UI, completions, man pages go (/usr/local)
#   SERVITOR_STOP_TIMEOUT  how long `systemctl stop` lets running jobs finish (1h)
#   SERVITOR_BIN_DIR       take servitord and servitorctl from this folder instead of
#                          building them from this checkout with cargo
#   SYSTEM_ROOT            install into this folder instead of / (packaging, tests)
set -euo pipefail

action="${1:-install}"
user="${SERVITOR_USER:-root}"
umask_value="${SERVITOR_UMASK:-0077}"
workdir="${SERVITOR_WORKDIR:-/srv/servitor}"
prefix="${SERVITOR_PREFIX:-/usr/local}"
stop_timeout="${SERVITOR_STOP_TIMEOUT:-1h}"
root="${SYSTEM_ROOT:-}"
root="${root%/}"
repo="$(cd "$(dirname "$0")/.." && pwd)"

unit="$root/etc/systemd/system/servitor.service"
bin="$root$prefix/bin"
share="$root$prefix/share"
ui="$share/servitor/ui"
completions=(
  "bash:$share/bash-completion/completions/servitorctl"
  "zsh:$share/zsh/site-functions/_servitorctl"
  "fish:$share/fish/vendor_completions.d/servitorctl.fish"
)
man="$share/man/man1"

say() { echo "servitor-installer: $*"; }
fail() { echo "servitor-installer: error: $*" >&2; exit 1; }

[[ "$umask_value" =~ ^0?[0-7]{3}$ ]] || fail "SERVITOR_UMASK must be an octal umask like 0077, not '$umask_value'"
[[ "$workdir" == /* ]] || fail "SERVITOR_WORKDIR must be an absolute path, not '$workdir'"
[[ "$prefix" == /* ]] || fail "SERVITOR_PREFIX must be an absolute path, not '$prefix'"

systemctl_here() {
  # Only for a real installation on a machine run by systemd.
  [[ -z "$root" && -d /run/systemd/system ]] && command -v systemctl >/dev/null
}

uninstall_servitor() {
  if systemctl_here; then
    systemctl disable --now servitor.service 2>/dev/null || true
  fi
  rm -f "$unit" "$bin/servitord" "$bin/servitorctl" "$man"/servitorctl*.1
  rm -rf "$share/servitor"
  for entry in "${completions[@]}"; do rm -f "${entry#*:}"; done
  if systemctl_here; then systemctl daemon-reload; fi
  say "removed Servitor; kept the working directory $root$workdir and the user $user"
}

binaries() {
  if [[ -n "${SERVITOR_BIN_DIR:-}" ]]; then
    echo "${SERVITOR_BIN_DIR%/}"
    return
  fi
  command -v cargo >/dev/null || fail "cargo is needed to build Servitor (or set SERVITOR_BIN_DIR)"
  say "building the release binaries" >&2
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p servitord -p servitorctl >&2
  echo "$repo/target/release"
}

ensure_user() {
  if id "$user" >/dev/null 2>&1; then return; fi
  if [[ -n "$root" ]]; then
    say "note: user $user does not exist here; create it on the target system"
    return
  fi
  say "creating the system user $user"
  useradd --system --home-dir "$workdir" --no-create-home --shell /usr/sbin/nologin "$user"
}

write_unit() {
  mkdir -p "$(dirname "$unit")"
  cat >"$unit.tmp" <<EOF
# Installed by scripts/servitor-installer.sh; running it again rewrites this file.
[Unit]
Description=Servitor job manager
Documentation=man:servitorctl(1)
After=network.target

[Service]
Type=simple
User=$user
UMask=$umask_value
WorkingDirectory=$workdir
EnvironmentFile=-$workdir/env
Environment=SERVITOR_UI_ROOT=$prefix/share/servitor/ui
ExecStart=$prefix/bin/servitord
Restart=always
RestartSec=2s
# Only servitord gets SIGTERM on stop: it closes its socket and waits for running
# jobs to finish. Whatever is still running after TimeoutStopSec is killed.
KillMode=mixed
TimeoutStopSec=$stop_timeout
# A connection, a log and a child per client and run.
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
EOF
  mv "$unit.tmp" "$unit"
}

install_servitor() {
  local from
  from="$(binaries)"
  for name in servitord servitorctl; do
    [[ -x "$from/$name" ]] || fail "$from/$name is missing"
  done

  mkdir -p "$bin" "$man" "$share/servitor"
  install -m 0755 "$from/servitord" "$from/servitorctl" "$bin/"

  # Replace the UI as a whole, so files removed upstream do not linger.
  rm -rf "$ui.new"
  cp -R "$repo/ui" "$ui.new"
  chmod -R u=rwX,go=rX "$ui.new"
  rm -rf "$ui"
  mv "$ui.new" "$ui"

  for entry in "${completions[@]}"; do
    local shell="${entry%%:*}" path="${entry#*:}"
    mkdir -p "$(dirname "$path")"
    "$from/servitorctl" completions "$shell" >"$path"
    chmod 0644 "$path"
  done
  "$from/servitorctl" man --dir "$man"
  chmod 0644 "$man"/servitorctl*.1

  ensure_user
  mkdir -p "$root$workdir/config/jobs"
  chmod 0750 "$root$workdir"
  if [[ $(id -u) == 0 ]] && id "$user" >/dev/null 2>&1; then
    chown "$user:" "$root$workdir" "$root$workdir/config" "$root$workdir/config/jobs"
  fi

  write_unit
  if systemctl_here; then
    systemctl daemon-reload
    if systemctl is-active --quiet servitor.service; then
      say "restarting servitor.service (running jobs finish first)"
      systemctl restart servitor.service
    fi
  fi
  say "installed Servitor $("$bin/servitord" --version | awk '{print $2}') into ${root:-/}"
  say "working directory: $root$workdir (put jobs into config/jobs/)"
  if [[ -z "$root" ]]; then
    say "start it with: systemctl enable --now servitor.service"
  fi
}

case "$action" in
  install) install_servitor ;;
  uninstall) uninstall_servitor ;;
  *) fail "unknown action '$action' (install or uninstall)" ;;
esac
