// The deploy environment's /init (run by busybox sh as PID 1) and udhcpc's event
// script. POSIX shell, kept small: mount the kernel's file systems, load the modules
// the hardware asks for (coldplug: every modalias under /sys, until no new device
// appears), DHCP on every NIC with a link (the one the machine booted from first),
// read hwimage.* from the kernel command line, run hwimage; a shell on the console
// whatever happens, since PID 1 must not exit (the kernel panics).
//
// The console sees clear markers a test or an operator can search for:
//   HWIMAGE-DHCP <if> <mac> <ip>/<prefix> router <gw>   a lease was bound
//   HWIMAGE-DEPLOY-UP mac=<boot mac> url=<server>       network up, hwimage about to run
//   HWIMAGE-VERSION <output of hwimage --version>
//   HWIMAGE-INVENTORY-BEGIN / -END                      `hwimage inventory --json`, one line
//   HWIMAGE-AGENT-START                                 `hwimage deploy-agent` runs (its log follows)
//   HWIMAGE-AGENT-EXIT <status>                         it ended without rebooting
//   HWIMAGE-DEPLOY-FAILED <reason>                      then a shell
// The token is a secret: it is never printed, only whether it was given.

/** Markers the deploy environment prints on its console. */
export const DEPLOY_MARKERS = {
  dhcp: 'HWIMAGE-DHCP',
  up: 'HWIMAGE-DEPLOY-UP',
  version: 'HWIMAGE-VERSION',
  inventoryBegin: 'HWIMAGE-INVENTORY-BEGIN',
  inventoryEnd: 'HWIMAGE-INVENTORY-END',
  failed: 'HWIMAGE-DEPLOY-FAILED',
  agentStart: 'HWIMAGE-AGENT-START',
  agentExit: 'HWIMAGE-AGENT-EXIT',
  /** Agent mode for OpenStack Ironic (ipa-api-url= on the command line): `hwimage ironic-agent` runs. */
  ironicAgentStart: 'HWIMAGE-IRONIC-AGENT-START',
  done: 'HWIMAGE-DEPLOY-DONE',
} as const

/** Where the udhcpc script is installed. */
export const UDHCPC_SCRIPT_PATH = '/usr/share/udhcpc/default.script'

/** The /init script. */
export function initScript(): string {
  const M = DEPLOY_MARKERS
  return `#!/bin/sh
# hwimage deploy environment: PID 1. See src/deploy/init-script.ts.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=linux
umask 022

fail() {
  echo "${M.failed} $*"
  echo "hwimage-deploy: dropping to a shell (exit it to get another)"
  rescue
}
rescue() {
  while :; do setsid cttyhack sh -l || sh; done
}

mkdir -p /proc /sys /dev /run /tmp /root /var/log
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755 tmpfs /run
# The installer's spools and the seed's private directory (node's os.tmpdir()).
mount -t tmpfs -o mode=1777 tmpfs /tmp
# efivarfs is a module in Debian's kernel and no device asks for it: the inventory reads SecureBoot there.
# Its mount point /sys/firmware/efi/efivars appears only once the module is loaded: test for efi.
if [ -d /sys/firmware/efi ]; then
  modprobe efivarfs || echo "hwimage-deploy: modprobe efivarfs failed"
  mount -t efivarfs efivarfs /sys/firmware/efi/efivars || echo "hwimage-deploy: mounting efivarfs failed"
  echo "hwimage-deploy: efivarfs: $(ls /sys/firmware/efi/efivars 2>&1 | wc -l) variables"
fi
echo "hwimage-deploy: kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPUs"

# Kernel command line: hwimage.url= hwimage.token= hwimage.mac=, and BOOTIF= as
# iPXE or pxelinux write it (01-52-54-00-12-34-56: ARP type 1, then the MAC).
HWIMAGE_URL= HWIMAGE_TOKEN= HWIMAGE_MAC= BOOTIF= IPA_API_URL=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    ipa-api-url=*) IPA_API_URL=\${arg#*=} ;;
    hwimage.url=*) HWIMAGE_URL=\${arg#*=} ;;
    hwimage.token=*) HWIMAGE_TOKEN=\${arg#*=} ;;
    hwimage.mac=*) HWIMAGE_MAC=\${arg#*=} ;;
    BOOTIF=*) BOOTIF=\${arg#*=} ;;
  esac
done
export HWIMAGE_URL HWIMAGE_TOKEN HWIMAGE_MAC
boot_mac=$HWIMAGE_MAC
if [ -z "$boot_mac" ] && [ -n "$BOOTIF" ]; then
  boot_mac=$(echo "\${BOOTIF#01-}" | tr - :)
fi
boot_mac=$(echo "$boot_mac" | tr A-F a-f)

# Coldplug: load a module for every device's modalias; loading one (virtio_pci)
# makes new devices (virtio0 …) appear, so go again until the set stops changing.
aliases() { find /sys/devices -name modalias -type f 2>/dev/null | xargs cat 2>/dev/null | sort -u; }
before=
now=$(aliases)
rounds=0
while [ "$now" != "$before" ] && [ $rounds -lt 5 ]; do
  echo "$now" | xargs modprobe -a -b -q 2>/dev/null
  sleep 1
  before=$now
  now=$(aliases)
  rounds=$((rounds + 1))
done
echo "hwimage-deploy: modules loaded: $(wc -l < /proc/modules) (coldplug rounds: $rounds)"
# From here the console is ours: kernel messages below warnings go to dmesg only.
dmesg -n 4

# NICs: the boot one first, then the others; DHCP on each that has a link.
nics=
for d in /sys/class/net/*; do
  i=\${d##*/}
  [ "$i" = lo ] && continue
  [ -e "$d/device" ] || continue
  if [ "$(cat "$d/address")" = "$boot_mac" ]; then nics="$i $nics"; else nics="$nics $i"; fi
done
leases=0
for i in $nics; do
  ip link set "$i" up
  n=0
  while [ "$(cat /sys/class/net/$i/carrier 2>/dev/null)" != 1 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  if [ "$(cat /sys/class/net/$i/carrier 2>/dev/null)" != 1 ]; then
    echo "hwimage-deploy: $i ($(cat /sys/class/net/$i/address)): no link"
    continue
  fi
  # -n: give up after the tries; after a lease udhcpc stays in the background and renews it.
  if udhcpc -i "$i" -n -t 5 -T 3 -A 2 -S -x hostname:hwimage-deploy -s ${UDHCPC_SCRIPT_PATH} -p /run/udhcpc.$i.pid >/dev/null 2>&1; then
    leases=$((leases + 1))
  else
    echo "hwimage-deploy: $i: no DHCP lease"
  fi
done
[ $leases -gt 0 ] || fail "no DHCP lease on any NIC ($nics)"

echo "${M.up} mac=\${boot_mac:-unknown} url=\${HWIMAGE_URL:-none} token=$([ -n "$HWIMAGE_TOKEN" ] && echo given || echo none)"
v=$(hwimage --version 2>&1) || fail "hwimage --version: $v"
echo "${M.version} $v"
if hwimage inventory --help >/dev/null 2>&1; then
  if hwimage inventory --json > /run/inventory.json 2>/run/inventory.err; then
    echo "${M.inventoryBegin}"
    tr -d '\\n' < /run/inventory.json
    echo
    echo "${M.inventoryEnd}"
  else
    fail "hwimage inventory: $(tail -n 3 /run/inventory.err)"
  fi
fi
# The deploy: with serve's URL on the command line, the agent reports, installs and
# reboots (src/deploy/agent.ts). It returns only when it did not reboot: after a failure
# it keeps asking serve (--retry) so that an operator can redeploy from the server.
if [ -n "$HWIMAGE_URL" ]; then
  echo "${M.agentStart}"
  hwimage deploy-agent --retry 30 2>&1
  rc=$?
  echo "${M.agentExit} $rc"
  [ $rc -eq 0 ] || fail "hwimage deploy-agent exited with status $rc"
elif [ -n "$IPA_API_URL" ]; then
  # Booted by OpenStack Ironic's PXE boot: act as its agent (src/ironic/agent.ts) until
  # Ironic powers the machine off.
  echo "${M.ironicAgentStart} api=$IPA_API_URL"
  hwimage ironic-agent 2>&1
  rc=$?
  echo "${M.agentExit} $rc"
  fail "hwimage ironic-agent exited with status $rc"
fi
echo "${M.done}"
rescue
`
}

/** udhcpc's event script (busybox udhcpc(8): $1 is the event; the lease is in the environment). */
export function udhcpcScript(): string {
  const M = DEPLOY_MARKERS
  return `#!/bin/sh
# hwimage deploy environment: udhcpc events. See src/deploy/init-script.ts.
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/\${mask:-24}" \${broadcast:+broadcast $broadcast} dev "$interface"
    if [ -n "$router" ]; then
      # The first NIC bound (the boot one) gets metric 0 and is the way out.
      metric=$(ip -4 route show default | wc -l)
      for r in $router; do ip route add default via "$r" dev "$interface" metric "$metric" 2>/dev/null; break; done
    fi
    # resolv.conf follows the NIC that carries the first default route.
    if [ -n "$dns" ] && { [ ! -s /etc/resolv.conf ] || ip -4 route show default | head -n 1 | grep -q "dev $interface "; }; then
      : > /etc/resolv.conf
      [ -n "$domain" ] && echo "search $domain" >> /etc/resolv.conf
      for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    fi
    echo "${M.dhcp} $interface $(cat /sys/class/net/$interface/address) $ip/\${mask:-24} router \${router:-none} lease \${lease:-?}s" > /dev/console
    ;;
  leasefail|nak)
    echo "hwimage-deploy: $interface: DHCP $1" > /dev/console
    ;;
esac
exit 0
`
}
