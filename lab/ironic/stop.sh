#!/usr/bin/env bash
# Stops what lab/ironic/start.sh started in DIR (Ironic, its HTTP server) and the BMCs that
# lab/ironic/bmc.sh started there (and their QEMU machines). The state (SQLite, logs) stays.
#   lab/ironic/stop.sh [DIR]
set -uo pipefail
dir=${1:-${IRONIC_LAB_DIR:-/tmp/ironic/run}}
stop_pid() { # pidfile
  [ -f "$1" ] || return 0
  local pid; pid=$(cat "$1")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"; }
  fi
  rm -f "$1"
}
shopt -s nullglob
for node in "$dir"/bmc/*/; do
  stop_pid "$node/qemu.pid"
  stop_pid "$node/ipmi_sim.pid"
done
stop_pid "$dir/ironic.pid"
stop_pid "$dir/http.pid"
echo "ironic lab: stopped in $dir" >&2
