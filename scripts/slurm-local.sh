#!/usr/bin/env bash
# A throwaway single-node Slurm cluster on this machine, to try and test Servitor's
# Slurm executor against.
#
#   eval "$(scripts/slurm-local.sh start)"   start it (installing slurm-wlm when missing);
#                                            prints `export SLURM_CONF=...` for the shell
#   scripts/slurm-local.sh status            says whether it runs (exit 0) or not (exit 3)
#   scripts/slurm-local.sh stop              stops exactly the daemons `start` started
#   scripts/slurm-local.sh controller stop   stops slurmctld alone (jobs keep running),
#   scripts/slurm-local.sh controller start  and starts it again with its saved state:
#                                            a controller outage, for tests
#
# Everything lives in one folder, $SERVITOR_SLURM_DIR (default /tmp/servitor-slurm):
# slurm.conf, the munge key and socket, Slurm's state, spool and logs, and the pids of
# the daemons. munged, slurmctld and slurmd run without systemd, listen on loopback
# only (ports $SERVITOR_SLURM_PORT and the next one, default 6817 and 6818), and run
# jobs as their submitter, which takes root. `start` twice is harmless; `start` after
# a crash cleans up what the crash left; `stop` is idempotent.
set -euo pipefail

dir=${SERVITOR_SLURM_DIR:-/tmp/servitor-slurm}
port=${SERVITOR_SLURM_PORT:-6817}
node=$(hostname -s)
conf=$dir/slurm.conf
# How long `start` waits for the node to come up, in seconds.
start_deadline=60
daemons=(munged slurmctld slurmd)

log() { echo "slurm-local: $*" >&2; }
die() { log "$@"; exit 1; }

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
  exit 2
}

# The start time of live process $1 (field 22 of /proc/PID/stat), which tells it apart
# from a later process that reuses its pid. A zombie (state Z or X: dead, not yet
# reaped) does not count. comm (field 2) may hold spaces: cut after its ')'.
start_time() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*') '}
  # Now the state (field 3) is $1 and the start time $20.
  awk '$1 != "Z" && $1 != "X" { print $20; ok = 1 } END { exit !ok }' <<<"$stat"
}

# Prints the pid of daemon $1 when the process recorded for it still runs.
running_pid() {
  local file=$dir/$1.pid pid recorded now
  [[ -r $file ]] || return 1
  read -r pid recorded <"$file" || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  now=$(start_time "$pid") || return 1
  [[ $now == "$recorded" ]] || return 1
  echo "$pid"
}

# Starts daemon $1 (the remaining words are its command line) in a session of its own,
# detached from the caller's terminal and output, and records its pid and start time.
launch() {
  local name=$1 pid started
  shift
  setsid "$@" </dev/null >>"$dir/log/$name.out" 2>&1 &
  pid=$!
  started=$(start_time "$pid") || die "$name exited at once; see $dir/log/$name.out"
  echo "$pid $started" >"$dir/$name.pid"
}

# Ends daemon $1 if `start` recorded it running: TERM, then KILL after 10 s.
stop_daemon() {
  local name=$1 pid i
  if pid=$(running_pid "$name"); then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      running_pid "$name" >/dev/null || break
      sleep 0.1
    done
    if running_pid "$name" >/dev/null; then
      log "$name did not stop within 10 s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$dir/$name.pid"
}

# Ends the daemons `start` recorded, slurmd first.
stop_daemons() {
  local name
  for name in slurmd slurmctld munged; do
    stop_daemon "$name"
  done
}

# Stops or starts slurmctld alone; started again, it keeps the state it saved (the
# jobs it knew), unlike at `start`.
controller() {
  export SLURM_CONF=$conf
  case ${1:-} in
    stop) stop_daemon slurmctld ;;
    start)
      running_pid munged >/dev/null || die "the cluster is not running: start it first"
      if ! running_pid slurmctld >/dev/null; then
        launch slurmctld slurmctld -D -i -f "$conf"
        local i
        for ((i = 0; i < 100; i++)); do
          sinfo -h >/dev/null 2>&1 && break
          sleep 0.1
        done
      fi
      log "slurmctld: running (pid $(running_pid slurmctld))"
      ;;
    *) usage ;;
  esac
}

all_running() {
  local name
  for name in "${daemons[@]}"; do
    running_pid "$name" >/dev/null || return 1
  done
}

install_slurm() {
  command -v sbatch >/dev/null && command -v slurmctld >/dev/null \
    && command -v slurmd >/dev/null && command -v munged >/dev/null && return 0
  if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    die "Slurm is not installed: install slurm-wlm (as root on Debian: apt-get install slurm-wlm)"
  fi
  log "installing slurm-wlm"
  # Keep the package's scripts from starting the system's own munge and Slurm services:
  # this cluster starts its own.
  local policy=/usr/sbin/policy-rc.d added=
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added=1
  fi
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm >&2 || {
    [[ -z $added ]] || rm -f "$policy"
    die "cannot install slurm-wlm"
  }
  [[ -z $added ]] || rm -f "$policy"
}

# proctrack/cgroup tracks every process of a job, even one that left its session, but
# needs a cgroup v1 freezer hierarchy that we may write to (Slurm 22.05's cgroup v2
# support wants systemd); else proctrack/linuxproc, which follows parent pids.
proctrack() {
  local probe=/sys/fs/cgroup/freezer/servitor-slurm-probe.$$
  if [[ -d /sys/fs/cgroup/freezer ]] && mkdir "$probe" 2>/dev/null; then
    rmdir "$probe"
    echo cgroup
  else
    echo linuxproc
  fi
}

write_config() {
  local tracking=$1 hardware
  # The node as slurmd sees it (CPUs, sockets, cores, memory): a node configured with
  # more than it has would be drained.
  hardware=$(slurmd -C | head -n 1) || die "slurmd -C failed"
  hardware=${hardware#NodeName=* }
  cat >"$conf" <<EOF
# Written by scripts/slurm-local.sh: a throwaway single-node cluster. Do not edit.
ClusterName=servitor
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/$tracking
TaskPlugin=task/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
SchedulerType=sched/backfill
# Start a submitted job at once rather than after the default few seconds.
SchedulerParameters=batch_sched_delay=0
# Memory counts, with a small default, so --mem means something and jobs go side by side.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=64
# Seconds between the SIGTERM and the SIGKILL of a cancelled or timed-out job.
KillWait=5
# Seconds a finished job stays visible to squeue.
MinJobAge=300
NodeName=$node NodeAddr=127.0.0.1 $hardware State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:16
EOF
  if [[ $tracking == cgroup ]]; then
    cat >"$dir/cgroup.conf" <<EOF
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=no
ConstrainRAMSpace=no
ConstrainDevices=no
EOF
  else
    rm -f "$dir/cgroup.conf"
  fi
}

node_state() {
  sinfo -h -n "$node" -o %T 2>/dev/null | head -n 1
}

# Waits until sinfo shows the node idle; false when a daemon died or at the deadline.
wait_idle() {
  local deadline=$((SECONDS + start_deadline)) state=
  while ((SECONDS < deadline)); do
    all_running || return 1
    state=$(node_state) || true
    [[ $state == idle ]] && return 0
    sleep 0.2
  done
  log "the node is still ${state:-unknown} after ${start_deadline}s"
  return 1
}

show_logs() {
  local file
  for file in "$dir"/log/*; do
    [[ -s $file ]] || continue
    log "--- last lines of $file"
    tail -n 15 "$file" >&2
  done
}

start_daemons() {
  local tracking=$1
  rm -rf "$dir/state" "$dir/spool" "$dir/run" "$dir/munge" "$dir/log"
  mkdir -p "$dir/state" "$dir/spool" "$dir/run" "$dir/munge" "$dir/log"
  # munged checks that its key is private and its socket folder not writable by others.
  chmod 755 "$dir/munge"
  mungekey --create --keyfile="$dir/munge/munge.key" 2>/dev/null \
    || dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 600 "$dir/munge/munge.key"
  write_config "$tracking"
  export SLURM_CONF=$conf

  launch munged munged --foreground --force --socket="$dir/munge/munge.socket" \
    --key-file="$dir/munge/munge.key" --pid-file="$dir/run/munged.pid" \
    --seed-file="$dir/munge/munged.seed" --log-file="$dir/log/munged.log"
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -S $dir/munge/munge.socket ]] && break
    running_pid munged >/dev/null || break
    sleep 0.1
  done
  [[ -S $dir/munge/munge.socket ]] || { show_logs; return 1; }
  # -c: no state from an earlier cluster in this folder; -i: ignore what is unreadable.
  launch slurmctld slurmctld -D -c -i -f "$conf"
  launch slurmd slurmd -D -N "$node" -f "$conf"
  wait_idle
}

start() {
  if all_running; then
    log "already running in $dir"
  else
    install_slurm
    [[ $(id -u) == 0 ]] || die "slurmd runs jobs as their submitter, which needs root"
    mkdir -p "$dir"
    # Leftovers of a crash or a half-started cluster.
    stop_daemons 2>/dev/null
    local tracking
    tracking=$(proctrack)
    log "starting munged, slurmctld and slurmd in $dir (proctrack/$tracking)"
    if ! start_daemons "$tracking"; then
      if [[ $tracking == cgroup ]]; then
        show_logs
        log "proctrack/cgroup did not come up: trying proctrack/linuxproc"
        stop_daemons
        start_daemons linuxproc || { show_logs; stop_daemons; die "the cluster did not start"; }
      else
        show_logs
        stop_daemons
        die "the cluster did not start"
      fi
    fi
    log "node $node is idle"
  fi
  printf 'export SLURM_CONF=%q\n' "$conf"
}

status() {
  local name pid down=0
  for name in "${daemons[@]}"; do
    if pid=$(running_pid "$name"); then
      log "$name: running (pid $pid)"
    else
      log "$name: not running"
      down=1
    fi
  done
  if ((down)); then
    log "not running"
    return 3
  fi
  log "node $node: $(SLURM_CONF=$conf node_state || echo unknown)"
  printf 'export SLURM_CONF=%q\n' "$conf"
}

case ${1:-} in
  start) start ;;
  stop) stop_daemons; log "stopped" ;;
  controller) controller "${2:-}" ;;
  status) status ;;
  *) usage ;;
esac
