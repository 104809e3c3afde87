#!/usr/bin/env bash
# The lab machine behind a BMC (lab/ironic/chassis.sh runs it at power on): QEMU (TCG) q35 with
# OVMF Secure Boot (Microsoft keys), a virtio NIC on QEMU's user network whose TFTP root is
# Ironic's (bootfile bootx64.efi = shim; 10.0.2.2 is the host), a virtio disk. NODE_DIR/bootdev
# pxe puts the NIC first in the boot order, disk the disk. The OVMF variable store persists in
# NODE_DIR/OVMF_VARS.fd like a real machine's NVRAM. SSH_PORT and AGENT_PORT (vm.env) forward
# 127.0.0.1 ports to the machine's 22 and 9999; DISK_SECTOR=4096 (vm.env) makes the disk 4Kn. The serial console is appended to SERIAL_LOG, so
# that it keeps every boot (the deploy environment's, then the disk's).
#   lab/ironic/vm.sh NODE_DIR        (memory: $LAB_VM_MEMORY_MIB, 2048)
set -euo pipefail
node=$1
# shellcheck source=/dev/null
. "$node/vm.env"
[ -f "$node/OVMF_VARS.fd" ] || cp /usr/share/OVMF/OVMF_VARS_4M.ms.fd "$node/OVMF_VARS.fd"
if [ "$(cat "$node/bootdev")" = pxe ]; then nic_boot=1 disk_boot=2; else nic_boot=2 disk_boot=1; fi
fwd=""
[ -n "${SSH_PORT:-}" ] && fwd=",hostfwd=tcp:127.0.0.1:$SSH_PORT-${SSH_GUEST:-}:22"
# Ironic reaches the deploy environment's agent (port 9999) at callback_url: behind QEMU's user
# network, a host forward, advertised with ipa-advertise-host=127.0.0.1 ipa-advertise-port=AGENT_PORT.
[ -n "${AGENT_PORT:-}" ] && fwd="$fwd,hostfwd=tcp:127.0.0.1:$AGENT_PORT-:9999"
exec qemu-system-x86_64 -name "$(basename "$node")" -accel tcg -machine q35,smm=on -m "${LAB_VM_MEMORY_MIB:-2048}" -smp 1 \
  -global driver=cfi.pflash01,property=secure,value=on \
  -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.ms.fd \
  -drive "if=pflash,format=raw,unit=1,file=$node/OVMF_VARS.fd" \
  -nodefaults -display none -chardev "file,id=ser0,path=$SERIAL_LOG,append=on" -serial chardev:ser0 -boot strict=on \
  -netdev "user,id=n0,tftp=$TFTP_ROOT,bootfile=bootx64.efi$fwd" \
  -device "virtio-net-pci,netdev=n0,mac=$MAC,romfile=,bootindex=$nic_boot" \
  -drive "file=$DISK,if=none,id=d0,format=raw,cache=unsafe" \
  -device "virtio-blk-pci,drive=d0,bootindex=$disk_boot${DISK_SECTOR:+,logical_block_size=$DISK_SECTOR,physical_block_size=$DISK_SECTOR}"
