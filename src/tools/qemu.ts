// qemu-system-x86_64 and qemu-img argv builders for the hardware lab. Pure: the
// machine is described as data (firmware, a classified storage controller, a
// classified NIC, disks) and becomes one argv. Always `-accel tcg`: KVM hangs on the
// machines this runs on, and TCG behaves the same everywhere.

import type { NicDevice, StorageDevice } from './qemu-devices.js'

/** The firmware a lab machine boots with. */
export type Firmware = 'bios' | 'uefi' | 'uefi-sb'

/** Every firmware, in the order reports list them. */
export const FIRMWARES: readonly Firmware[] = ['bios', 'uefi', 'uefi-sb']

/** OVMF code and the variable store template each UEFI firmware uses (Debian's `ovmf` package). */
export const OVMF_FILES = {
  uefi: { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', varsTemplate: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
  // The `.ms` variable store enrolls Microsoft's KEK and db (and Debian's PK), so the
  // Microsoft-signed shim is trusted and Secure Boot is on from the first boot.
  'uefi-sb': { code: '/usr/share/OVMF/OVMF_CODE_4M.ms.fd', varsTemplate: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd' },
} as const

/** One disk image attached to the machine. */
export interface QemuDisk {
  path: string
  format: 'raw' | 'qcow2'
  /** boot: gets bootindex=1; seed: the NoCloud volume; extra: any other disk. */
  role: 'boot' | 'seed' | 'extra'
  /** The disk's logical and physical sector size (default QEMU's 512); 4096: a 4Kn disk (virtio-blk, NVMe, SCSI only). */
  blockSize?: 512 | 4096
}

/** A TCP port on the host's loopback forwarded to a port of the guest. */
export interface HostForward {
  hostPort: number
  guestPort: number
}

/** Everything that makes one lab machine. */
export interface QemuMachine {
  firmware: Firmware
  storage: StorageDevice
  nic: NicDevice
  disks: readonly QemuDisk[]
  memoryMiB: number
  cpus: number
  /** A per-boot copy of the OVMF variable store (required for uefi and uefi-sb). */
  varsPath?: string
  /** Where the serial console goes. */
  serialLog: string
  hostForwards?: readonly HostForward[]
  macAddress: string
  /**
   * Where the seed disk goes: 'same' (default) puts it on the boot disk's controller,
   * as an installed seed partition would be; 'virtio-blk' on its own virtio-blk-pci.
   */
  seedOn?: 'same' | 'virtio-blk'
  /** A name shown by `ps` and in QEMU's messages. */
  name?: string
  /** OVMF code path override (tests, other distributions). */
  ovmfCode?: string
  /**
   * Boot from the network first and the boot disk second: slirp's DHCP names `bootfile`
   * and its TFTP serves `tftpRoot`; or, with `tap`, the NIC is on that tap device (a real
   * network: DHCP and TFTP come from whatever serves it, e.g. dnsmasq). SeaBIOS boots
   * through the NIC's iPXE option ROM; OVMF through its own network stack (no option ROM:
   * Secure Boot refuses unsigned ones).
   */
  netboot?: { tftpRoot: string; bootfile: string } | { tap: string }
}

const HBA = 'hba0'

/** The argv (without the program) of `qemu-system-x86_64` for a lab machine. */
export function buildQemuArgs(m: QemuMachine): string[] {
  const args: string[] = []
  if (m.name) args.push('-name', m.name)
  // graphics=off makes SeaBIOS (and GRUB through it) write its screen to the serial
  // port (SeaBIOS "sercon"), so a BIOS boot's firmware messages reach the log too.
  const machine = m.firmware === 'uefi-sb' ? 'q35,smm=on,graphics=off' : 'q35,graphics=off'
  args.push('-accel', 'tcg', '-machine', machine, '-m', String(m.memoryMiB), '-smp', String(m.cpus))
  args.push(...firmwareArgs(m))
  // No default VGA, NIC, serial or monitor: only what is named here, so the cell is
  // exactly firmware × storage × NIC. strict: boot only from bootindex devices.
  args.push('-nodefaults', '-display', 'none', '-serial', `file:${m.serialLog}`, '-boot', 'strict=on')
  args.push(...storageArgs(m))
  args.push(...nicArgs(m))
  return args
}

function firmwareArgs(m: QemuMachine): string[] {
  if (m.firmware === 'bios') return [] // SeaBIOS is QEMU's default firmware
  if (!m.varsPath)
    throw new TypeError(`buildQemuArgs(): firmware "${m.firmware}" needs varsPath (a copy of the OVMF variable store)`)
  const code = m.ovmfCode ?? OVMF_FILES[m.firmware].code
  const args = [
    '-drive',
    `if=pflash,format=raw,unit=0,readonly=on,file=${code}`,
    '-drive',
    `if=pflash,format=raw,unit=1,file=${m.varsPath}`,
  ]
  // The Secure Boot build keeps its variables in SMM-protected flash: without these
  // the firmware refuses to start (OVMF README, "SMM support").
  if (m.firmware === 'uefi-sb') args.push('-global', 'driver=cfi.pflash01,property=secure,value=on')
  return args
}

function drive(id: string, d: QemuDisk): string {
  // Lab disks are throwaway overlays and seeds: cache=unsafe skips host flushes.
  return `if=none,id=${id},file=${escapeOpt(d.path)},format=${d.format},cache=unsafe,discard=unmap`
}

/** QEMU option values escape a comma by doubling it. */
export function escapeOpt(value: string): string {
  return value.replaceAll(',', ',,')
}

function storageArgs(m: QemuMachine): string[] {
  const args: string[] = []
  const boot = m.disks.filter((d) => d.role === 'boot')
  if (boot.length !== 1) throw new TypeError(`buildQemuArgs(): exactly one boot disk expected, got ${boot.length}`)
  // Boot disk first, then the others in order, each with its own drive id.
  const ordered = [...boot, ...m.disks.filter((d) => d.role !== 'boot')]
  const onController = ordered.filter((d) => !(d.role === 'seed' && m.seedOn === 'virtio-blk'))
  const s = m.storage
  if (s.kind === 'scsi-hba') args.push('-device', `${s.device},id=${HBA}`)
  if (s.kind === 'ide-controller') args.push('-device', `${s.device},id=${HBA}`)
  if (s.kind === 'usb-storage') args.push('-device', `qemu-xhci,id=${HBA}`)
  ordered.forEach((d, i) => {
    const id = `d${i}`
    args.push('-drive', drive(id, d))
    const bootindex = `${d.role === 'boot' ? `,bootindex=${m.netboot ? 2 : 1}` : ''}${blockSizeProps(d, s.kind)}`
    if (!onController.includes(d)) {
      args.push('-device', `virtio-blk-pci,drive=${id}${blockSizeProps(d, 'virtio-blk')}`)
      return
    }
    const slot = onController.indexOf(d)
    switch (s.kind) {
      case 'virtio-blk':
        args.push('-device', `${s.device},drive=${id}${bootindex}`)
        break
      case 'nvme':
        // One controller per disk; the serial is what Linux shows in /dev/disk/by-id.
        args.push('-device', `nvme,serial=hwimage${slot},drive=${id}${bootindex}`)
        break
      case 'ahci':
        // q35's built-in ICH9 AHCI has six ports, buses ide.0 … ide.5.
        args.push('-device', `ide-hd,bus=ide.${slot},drive=${id}${bootindex}`)
        break
      case 'ide-controller':
        args.push('-device', `ide-hd,bus=${HBA}.${slot},drive=${id}${bootindex}`)
        break
      case 'scsi-hba':
        args.push('-device', `scsi-hd,bus=${HBA}.0,channel=0,scsi-id=${slot},lun=0,drive=${id}${bootindex}`)
        break
      case 'usb-storage':
        args.push('-device', `usb-storage,bus=${HBA}.0,drive=${id}${bootindex}`)
        break
    }
  })
  return args
}

/** A 4Kn disk: QEMU's block device properties (hw/block/block.c), which IDE/AHCI and usb-storage do not take beyond 512. */
function blockSizeProps(d: QemuDisk, kind: StorageDevice['kind']): string {
  if (d.blockSize === undefined || d.blockSize === 512) return ''
  if (kind !== 'virtio-blk' && kind !== 'nvme' && kind !== 'scsi-hba')
    throw new TypeError(`buildQemuArgs(): ${d.blockSize}-byte sectors need virtio-blk, NVMe or SCSI, not ${kind}`)
  return `,logical_block_size=${d.blockSize},physical_block_size=${d.blockSize}`
}

function nicArgs(m: QemuMachine): string[] {
  // User networking: the guest gets 10.0.2.15 by DHCP and reaches the host's
  // loopback as 10.0.2.2; hostfwd maps a host loopback port into the guest.
  const fwd = (m.hostForwards ?? []).map((f) => `,hostfwd=tcp:127.0.0.1:${f.hostPort}-:${f.guestPort}`).join('')
  const nb = m.netboot
  let args: string[]
  if (nb && 'tap' in nb) {
    if (fwd) throw new TypeError('buildQemuArgs(): hostForwards need user networking, not a tap device')
    args = ['-netdev', `tap,id=n0,ifname=${escapeOpt(nb.tap)},script=no,downscript=no`]
  } else {
    const tftp = nb ? `,tftp=${escapeOpt(nb.tftpRoot)},bootfile=${escapeOpt(nb.bootfile)}` : ''
    args = ['-netdev', `user,id=n0${tftp}${fwd}`]
  }
  const n = m.nic
  const bootindex = nb ? ',bootindex=1' : ''
  if (n.bus === 'usb')
    args.push(
      '-device',
      'qemu-xhci,id=usbnic',
      '-device',
      `${n.device},netdev=n0,mac=${m.macAddress},bus=usbnic.0${bootindex}`,
    )
  // romfile= drops the NIC's iPXE option ROM: the firmware must not try PXE first, and
  // OVMF network-boots with its own drivers; only SeaBIOS needs the ROM to boot from the network.
  else if (n.bus === 'pci') {
    const rom = nb && m.firmware === 'bios' ? '' : ',romfile='
    args.push('-device', `${n.device},netdev=n0,mac=${m.macAddress}${rom}${bootindex}`)
  } else args.push('-device', `${n.device},netdev=n0,mac=${m.macAddress}${bootindex}`)
  return args
}

/** The argv of `qemu-img create` for a copy-on-write qcow2 overlay over a raw image (the image stays untouched). */
export function qemuImgOverlayArgv(opts: {
  backing: string
  backingFormat: 'raw' | 'qcow2'
  overlay: string
  sizeBytes?: bigint
}): string[] {
  const argv = ['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', opts.backing, '-F', opts.backingFormat, opts.overlay]
  if (opts.sizeBytes !== undefined) argv.push(String(opts.sizeBytes))
  return argv
}

/** A locally administered unicast MAC address (52:54:00 is QEMU's prefix) derived from a number. */
export function macAddressFor(n: number): string {
  const b = [(n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]
  return ['52', '54', '00', ...b.map((x) => x.toString(16).padStart(2, '0'))].join(':')
}
