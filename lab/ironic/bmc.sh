#!/usr/bin/env bash
# A BMC for one QEMU machine: OpenIPMI's ipmi_sim answering IPMI 2.0 (lanplus) on 127.0.0.1:PORT,
# user admin / password, whose chassis control (lab/ironic/chassis.sh) starts and stops the
# machine and records its boot device. Ironic's `ipmi` hardware type drives it with ipmitool.
#
#   lab/ironic/bmc.sh DIR NAME PORT DISK MAC [SSH_PORT [AGENT_PORT]]
#
# DIR is the lab's directory (lab/ironic/start.sh), NAME the machine's name, DISK its raw disk
# image (made by the caller), MAC its NIC's address; SSH_PORT (optional) forwards
# 127.0.0.1:SSH_PORT to the machine's port 22, AGENT_PORT (optional) to its port 9999 (the
# deploy environment's Ironic agent: put ipa-advertise-host=127.0.0.1 ipa-advertise-port=AGENT_PORT
# in the node's driver_info/kernel_append_params). LAB_SSH_GUEST=ADDR forwards SSH to the guest
# address ADDR (e.g. a static address from the config drive's network_data.json) instead of
# QEMU's DHCP lease 10.0.2.15; LAB_DISK_SECTOR=4096 gives the machine a 4Kn disk. The machine
# (lab/ironic/vm.sh) boots OVMF with Secure Boot from the network (QEMU's user network, TFTP
# root DIR/tftp = Ironic's) or from DISK.
# Its serial console goes to DIR/bmc/NAME/serial.log. Stopped by lab/ironic/stop.sh DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 5 ]; then
  echo "usage: lab/ironic/bmc.sh DIR NAME PORT DISK MAC [SSH_PORT [AGENT_PORT]]" >&2
  echo "example: lab/ironic/bmc.sh /tmp/ironic/run node1 6231 /tmp/ironic/node1.img 52:54:00:12:34:01" >&2
  exit 2
fi
dir=$(cd "$1" && pwd) name=$2 port=$3 disk=$4 mac=$5 ssh_port=${6:-} agent_port=${7:-}
command -v ipmi_sim >/dev/null || { echo "bmc: ipmi_sim is missing — run: make setup-ironic" >&2; exit 2; }
[[ $name =~ ^[A-Za-z0-9_-]+$ ]] || { echo "bmc: NAME must be letters, digits, - or _ (got '$name')" >&2; exit 2; }
[[ $port =~ ^[0-9]+$ ]] || { echo "bmc: PORT must be a number (got '$port')" >&2; exit 2; }
for p in "$ssh_port" "$agent_port"; do
  [[ -z $p || $p =~ ^[0-9]+$ ]] || { echo "bmc: SSH_PORT and AGENT_PORT must be numbers (got '$p')" >&2; exit 2; }
done
[[ $mac =~ ^([0-9a-f]{2}:){5}[0-9a-f]{2}$ ]] || { echo "bmc: MAC must be like 52:54:00:12:34:01, lower case (got '$mac')" >&2; exit 2; }
[ -f "$disk" ] || { echo "bmc: disk image $disk does not exist (make it first, e.g. truncate -s 8G $disk)" >&2; exit 2; }
node=$dir/bmc/$name
mkdir -p "$node/state"
if [ -f "$node/ipmi_sim.pid" ] && kill -0 "$(cat "$node/ipmi_sim.pid")" 2>/dev/null; then
  echo "bmc: $name already runs (pid $(cat "$node/ipmi_sim.pid"))" >&2; exit 1
fi
disk=$(readlink -f "$disk")
cat >"$node/vm.env" <<ENV
DISK=$disk
MAC=$mac
TFTP_ROOT=$dir/tftp
SSH_PORT=$ssh_port
SSH_GUEST=${LAB_SSH_GUEST:-}
AGENT_PORT=$agent_port
DISK_SECTOR=${LAB_DISK_SECTOR:-}
SERIAL_LOG=$node/serial.log
NODE_DIR=$node
ENV
[ -f "$node/bootdev" ] || echo disk >"$node/bootdev"

cat >"$node/lan.conf" <<CONF
name "$name"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 $port
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "$here/chassis.sh $node"
  user 2 true "admin" "password" admin 10 none md2 md5 straight
CONF
cat >"$node/sim.emu" <<'EMU'
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
EMU
setsid ipmi_sim -n -c "$node/lan.conf" -f "$node/sim.emu" -s "$node/state" \
  >"$node/ipmi_sim.log" 2>&1 </dev/null &
echo $! >"$node/ipmi_sim.pid"
for _ in $(seq 1 10); do
  if ipmitool -N 1 -R 1 -I lanplus -H 127.0.0.1 -p "$port" -U admin -P password chassis power status >/dev/null 2>&1; then
    echo "bmc: $name answers IPMI on 127.0.0.1:$port (admin/password)" >&2
    exit 0
  fi
  kill -0 "$(cat "$node/ipmi_sim.pid")" 2>/dev/null || { echo "bmc: ipmi_sim exited:" >&2; tail -5 "$node/ipmi_sim.log" >&2; exit 1; }
  sleep 0.2
done
echo "bmc: ipmi_sim did not answer on 127.0.0.1:$port within 10 tries, see $node/ipmi_sim.log" >&2
exit 1
