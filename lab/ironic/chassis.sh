#!/usr/bin/env bash
# ipmi_sim's chassis control for a lab machine (lab/ironic/bmc.sh writes NODE_DIR/vm.env):
#   chassis.sh NODE_DIR get power|boot ...      prints power:1|0, boot:pxe|default
#   chassis.sh NODE_DIR set power 1|0 | reset 1 | boot pxe|default|none ...
# Power on starts lab/ironic/vm.sh (QEMU) in the background; power off kills it (a hard power
# off, as a BMC does); reset is off then on. The boot device is kept in NODE_DIR/bootdev
# (pxe → the NIC first, anything else → the disk first) and read at each power on.
# Errors go to stdout (ipmi_sim logs them) with a non-zero exit.
set -uo pipefail
node=$1 op=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "$(date -u +%FT%TZ) $*" >>"$node/chassis.log"; }
running() { [ -f "$node/qemu.pid" ] && kill -0 "$(cat "$node/qemu.pid")" 2>/dev/null; }
power_on() {
  running && return 0
  setsid "$here/vm.sh" "$node" >>"$node/qemu.log" 2>&1 </dev/null &
  echo $! >"$node/qemu.pid"
  log "power on (boot $(cat "$node/bootdev")), pid $!"
}
power_off() {
  running || return 0
  local pid; pid=$(cat "$node/qemu.pid")
  # A hard power off, and quick: ipmi_sim waits for this script before it answers ipmitool.
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
  for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$node/qemu.pid"
  log "power off, pid $pid"
}
case $op in
  get)
    for parm in "$@"; do
      case $parm in
        power) if running; then echo "power:1"; else echo "power:0"; fi ;;
        boot) if [ "$(cat "$node/bootdev")" = pxe ]; then echo "boot:pxe"; else echo "boot:default"; fi ;;
        *) echo "chassis.sh: cannot get '$parm'"; exit 1 ;;
      esac
    done ;;
  set)
    while [ $# -ge 2 ]; do
      parm=$1 val=$2; shift 2
      case $parm in
        power) if [ "$val" = 1 ]; then power_on; else power_off; fi ;;
        reset) power_off; power_on ;;
        boot) if [ "$val" = pxe ]; then echo pxe >"$node/bootdev"; else echo disk >"$node/bootdev"; fi
              log "boot device $val" ;;
        *) echo "chassis.sh: cannot set '$parm'"; exit 1 ;;
      esac
    done ;;
  *) echo "chassis.sh: unknown operation '$op' (get or set)"; exit 1 ;;
esac
