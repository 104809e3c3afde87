// QEMU's device catalog: `qemu-system-x86_64 -device help` parsed, and any storage or
// network device name classified by how a disk or NIC is wired onto it. Any name
// QEMU knows is accepted (aliases too); a name it does not know is a UsageError that
// lists the devices it does know, so the lab is never limited to a hand-made list.

import { UsageError } from '../errors.js'
import { run } from './run.js'

/** One line of `-device help`: `name "megasas", bus PCI, desc "LSI MegaRAID SAS 1078"`. */
export interface QemuDevice {
  readonly name: string
  /** The bus the device plugs into: PCI, SCSI, IDE, usb-bus, ISA … (absent for a few). */
  readonly bus: string | undefined
  readonly aliases: readonly string[]
  readonly desc: string | undefined
  /** The help section: "Storage devices", "Network devices" … */
  readonly section: string
}

/** How a boot disk is attached for a storage device kind. */
export type StorageKind =
  /** a PCI device that is itself one disk: virtio-blk-pci and its variants */
  | 'virtio-blk'
  /** an NVMe controller, one namespace per controller */
  | 'nvme'
  /** q35's built-in ICH9 AHCI (SATA) controller: `ide-hd` on bus ide.N */
  | 'ahci'
  /** an added IDE or AHCI controller: `ide-hd` on its bus */
  | 'ide-controller'
  /** a SCSI host bus adapter: `scsi-hd` on its bus */
  | 'scsi-hba'
  /** USB mass storage on an added xHCI controller */
  | 'usb-storage'

/** A storage device name resolved against QEMU's catalog. */
export interface StorageDevice {
  /** The name as the user wrote it (reports use it). */
  readonly name: string
  /** QEMU's canonical device name. */
  readonly device: string
  readonly kind: StorageKind
}

/** A network device name resolved against QEMU's catalog. */
export interface NicDevice {
  readonly name: string
  readonly device: string
  /** PCI NICs get `romfile=` (no PXE option ROM); USB NICs need a controller. */
  readonly bus: 'pci' | 'usb' | 'isa'
}

const LINE = /^name "([^"]+)"(?:, bus ([^,]+))?((?:, alias "[^"]+")*)(?:, desc "(.*)")?\s*$/

/** Parses the text of `qemu-system-x86_64 -device help`. */
export function parseDeviceHelp(text: string): QemuDevice[] {
  const out: QemuDevice[] = []
  let section = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line) continue
    if (line.endsWith(':') && !line.startsWith('name ')) {
      section = line.slice(0, -1)
      continue
    }
    const m = LINE.exec(line)
    if (!m) continue
    const aliases = [...(m[3] ?? '').matchAll(/alias "([^"]+)"/g)].map((a) => a[1]!)
    out.push({ name: m[1]!, bus: m[2], aliases, desc: m[4], section })
  }
  return out
}

// SCSI HBAs QEMU emulates whose name and description do not say "SCSI".
const SCSI_HBA_NAMES = new Set([
  'megasas',
  'megasas-gen2',
  'mptsas1068',
  'lsi53c810',
  'lsi53c895a',
  'am53c974',
  'dc390',
  'pvscsi',
])

/** The storage kind of a catalog device, or a reason it cannot hold hwimage's boot disk. */
export function storageKindOf(d: QemuDevice): StorageKind | { reason: string } {
  const n = d.name
  if (d.section !== 'Storage devices') return { reason: `it is in QEMU's "${d.section}" section, not a storage device` }
  // vhost-* devices need a host backend (a vhost target or a vhost-user daemon).
  if (n.startsWith('vhost-')) return { reason: 'it needs a vhost backend on the host' }
  if (n === 'ide-hd') return 'ahci' // the design's name for "a disk on q35's SATA"
  if (d.bus === 'SCSI')
    return { reason: 'it is a disk on a SCSI bus; name the SCSI controller instead (e.g. virtio-scsi-pci, megasas)' }
  if (d.bus === 'usb-bus')
    return n === 'usb-storage' ? 'usb-storage' : { reason: 'only usb-storage is wired among USB storage devices' }
  if (d.bus !== 'PCI') return { reason: `it sits on bus "${d.bus ?? 'none'}", not PCI` }
  if (n.startsWith('virtio-blk-pci')) return 'virtio-blk'
  if (n === 'nvme') return 'nvme'
  if (n === 'ich9-ahci') return 'ahci'
  if (/^piix\d-ide$/.test(n)) return 'ide-controller'
  if (n.startsWith('virtio-scsi-pci') || SCSI_HBA_NAMES.has(n) || /scsi/i.test(d.desc ?? '')) return 'scsi-hba'
  return { reason: 'it is not a disk controller hwimage knows how to attach a disk to' }
}

/** Finds a device by name or alias. */
export function findDevice(catalog: readonly QemuDevice[], name: string): QemuDevice | undefined {
  return catalog.find((d) => d.name === name) ?? catalog.find((d) => d.aliases.includes(name))
}

/** Every storage device name in the catalog that can hold the boot disk. */
export function storageDeviceNames(catalog: readonly QemuDevice[]): string[] {
  return catalog.filter((d) => typeof storageKindOf(d) === 'string').map((d) => d.name)
}

/** Every NIC name in the catalog that hwimage can wire. */
export function nicDeviceNames(catalog: readonly QemuDevice[]): string[] {
  return catalog.filter((d) => nicBusOf(d) !== undefined).map((d) => d.name)
}

/** Resolves a storage controller name (`virtio-blk`, `ahci`, `megasas`, any QEMU name); UsageError if unusable. */
export function classifyStorage(catalog: readonly QemuDevice[], name: string): StorageDevice {
  const d = findDevice(catalog, name)
  const known = () => `QEMU's storage devices here: ${storageDeviceNames(catalog).join(', ')}`
  if (!d) throw new UsageError(`Cannot use storage device "${name}": QEMU does not know it`, { hint: known() })
  const kind = storageKindOf(d)
  if (typeof kind !== 'string')
    throw new UsageError(`Cannot use storage device "${name}": ${kind.reason}`, { hint: known() })
  return { name, device: d.name, kind }
}

function nicBusOf(d: QemuDevice): NicDevice['bus'] | undefined {
  if (d.section !== 'Network devices') return undefined
  if (d.bus === 'PCI') return d.name === 'pvrdma' || d.name === 'rocker' ? undefined : 'pci'
  if (d.bus === 'usb-bus') return 'usb'
  if (d.bus === 'ISA') return 'isa'
  return undefined // virtio-net-device and the like need a transport we do not add
}

/** Resolves a NIC name (`virtio-net-pci`, `e1000`, any QEMU name); UsageError if unusable. */
export function classifyNic(catalog: readonly QemuDevice[], name: string): NicDevice {
  const d = findDevice(catalog, name)
  const known = () => `QEMU's network devices here: ${nicDeviceNames(catalog).join(', ')}`
  if (!d) throw new UsageError(`Cannot use network device "${name}": QEMU does not know it`, { hint: known() })
  const bus = nicBusOf(d)
  if (!bus) {
    const why =
      d.section === 'Network devices'
        ? 'it is not an Ethernet NIC hwimage can wire'
        : `it is in QEMU's "${d.section}" section, not a network device`
    throw new UsageError(`Cannot use network device "${name}": ${why}`, { hint: known() })
  }
  return { name, device: d.name, bus }
}

const cache = new Map<string, Promise<QemuDevice[]>>()

/** QEMU's device catalog, read once per process per binary. */
export function loadDeviceCatalog(qemu = 'qemu-system-x86_64'): Promise<QemuDevice[]> {
  let p = cache.get(qemu)
  if (!p) {
    p = run([qemu, '-device', 'help']).then((r) => parseDeviceHelp(r.stdout + '\n' + r.stderr))
    p.catch(() => cache.delete(qemu))
    cache.set(qemu, p)
  }
  return p
}
