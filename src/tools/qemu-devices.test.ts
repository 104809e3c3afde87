import { test } from 'node:test'
import assert from 'node:assert/strict'
import { classifyNic, classifyStorage, loadDeviceCatalog, parseDeviceHelp, storageDeviceNames } from './qemu-devices.js'
import { UsageError } from '../errors.js'

// An excerpt of `qemu-system-x86_64 -device help` from QEMU 7.2 (Debian 12).
const HELP = `Controller/Bridge/Hub devices:
name "pcie-root-port", bus PCI, desc "PCI Express Root Port"

Storage devices:
name "am53c974", bus PCI, desc "AMD Am53c974 PCscsi-PCI SCSI adapter"
name "floppy", bus floppy-bus, desc "virtual floppy drive"
name "ich9-ahci", bus PCI, alias "ahci"
name "ide-hd", bus IDE, desc "virtual IDE disk"
name "lsi53c895a", bus PCI, alias "lsi"
name "megasas", bus PCI, desc "LSI MegaRAID SAS 1078"
name "mptsas1068", bus PCI, desc "LSI SAS 1068"
name "nvdimm", desc "DIMM memory module"
name "nvme", bus PCI, desc "Non-Volatile Memory Express"
name "piix4-ide", bus PCI
name "pvscsi", bus PCI
name "scsi-hd", bus SCSI, desc "virtual SCSI disk"
name "usb-storage", bus usb-bus
name "vhost-scsi-pci", bus PCI
name "virtio-blk-pci", bus PCI, alias "virtio-blk"
name "virtio-scsi-pci", bus PCI, alias "virtio-scsi"

Network devices:
name "e1000", bus PCI, alias "e1000-82540em", desc "Intel Gigabit Ethernet"
name "e1000e", bus PCI, desc "Intel 82574L GbE Controller"
name "ne2k_isa", bus ISA
name "rtl8139", bus PCI
name "usb-net", bus usb-bus
name "virtio-net-device", bus virtio-bus
name "virtio-net-pci", bus PCI, alias "virtio-net"

Input devices:
name "usb-kbd", bus usb-bus
`

const catalog = parseDeviceHelp(HELP)

test('parseDeviceHelp() reads name, bus, aliases, description and section', () => {
  const e1000 = catalog.find((d) => d.name === 'e1000')
  assert.deepEqual(e1000, {
    name: 'e1000',
    bus: 'PCI',
    aliases: ['e1000-82540em'],
    desc: 'Intel Gigabit Ethernet',
    section: 'Network devices',
  })
  const nvdimm = catalog.find((d) => d.name === 'nvdimm')
  assert.deepEqual(nvdimm, {
    name: 'nvdimm',
    bus: undefined,
    aliases: [],
    desc: 'DIMM memory module',
    section: 'Storage devices',
  })
  assert.equal(catalog.length, 25)
})

test("classifyStorage() wires the design's controllers by their usual names", () => {
  const kinds = Object.fromEntries(
    [
      'virtio-blk',
      'virtio-scsi',
      'ahci',
      'ide-hd',
      'nvme',
      'megasas',
      'mptsas1068',
      'lsi',
      'pvscsi',
      'am53c974',
      'piix4-ide',
      'usb-storage',
    ].map((n) => [n, classifyStorage(catalog, n)]),
  )
  assert.deepEqual(kinds['virtio-blk'], { name: 'virtio-blk', device: 'virtio-blk-pci', kind: 'virtio-blk' })
  assert.equal(kinds['virtio-scsi']!.device, 'virtio-scsi-pci')
  assert.equal(kinds['virtio-scsi']!.kind, 'scsi-hba')
  assert.equal(kinds.ahci!.kind, 'ahci')
  assert.equal(kinds['ide-hd']!.kind, 'ahci')
  assert.equal(kinds.nvme!.kind, 'nvme')
  for (const hba of ['megasas', 'mptsas1068', 'lsi', 'pvscsi', 'am53c974'])
    assert.equal(kinds[hba]!.kind, 'scsi-hba', hba)
  assert.equal(kinds.lsi!.device, 'lsi53c895a')
  assert.equal(kinds['piix4-ide']!.kind, 'ide-controller')
  assert.equal(kinds['usb-storage']!.kind, 'usb-storage')
})

test('classifyStorage() rejects a name QEMU does not know and lists the storage devices it does', () => {
  assert.throws(
    () => classifyStorage(catalog, 'megaraid'),
    (e: unknown) => {
      assert.ok(e instanceof UsageError)
      assert.match(e.message, /"megaraid": QEMU does not know it/)
      assert.match(e.hint ?? '', /megasas/)
      assert.match(e.hint ?? '', /virtio-blk-pci/)
      assert.doesNotMatch(e.hint ?? '', /e1000/)
      return true
    },
  )
})

test('classifyStorage() rejects devices that cannot hold a boot disk, saying why', () => {
  for (const [name, why] of [
    ['scsi-hd', /name the SCSI controller/],
    ['e1000', /Network devices/],
    ['vhost-scsi-pci', /vhost backend/],
    ['floppy', /not PCI/],
    ['nvdimm', /not PCI/],
  ] as const) {
    assert.throws(
      () => classifyStorage(catalog, name),
      (e: unknown) => e instanceof UsageError && why.test(e.message),
      name,
    )
  }
  assert.ok(!storageDeviceNames(catalog).includes('scsi-hd'))
})

test('classifyNic() accepts PCI, USB and ISA NICs by name or alias and rejects the rest', () => {
  assert.deepEqual(classifyNic(catalog, 'virtio-net'), { name: 'virtio-net', device: 'virtio-net-pci', bus: 'pci' })
  assert.equal(classifyNic(catalog, 'e1000-82540em').device, 'e1000')
  assert.equal(classifyNic(catalog, 'usb-net').bus, 'usb')
  assert.equal(classifyNic(catalog, 'ne2k_isa').bus, 'isa')
  assert.throws(() => classifyNic(catalog, 'virtio-net-device'), UsageError)
  assert.throws(
    () => classifyNic(catalog, 'nvme'),
    (e: unknown) => e instanceof UsageError && /Storage devices/.test(e.message),
  )
  assert.throws(
    () => classifyNic(catalog, 'ne3000'),
    (e: unknown) => e instanceof UsageError && /rtl8139/.test(e.hint ?? ''),
  )
})

test('loadDeviceCatalog() classifies every controller and NIC of the design on this QEMU', async () => {
  const real = await loadDeviceCatalog()
  assert.equal(await loadDeviceCatalog(), real, 'the catalog is read once per process')
  const expect = {
    'virtio-blk': 'virtio-blk',
    'virtio-scsi': 'scsi-hba',
    ahci: 'ahci',
    nvme: 'nvme',
    megasas: 'scsi-hba',
    'megasas-gen2': 'scsi-hba',
    mptsas1068: 'scsi-hba',
    lsi53c895a: 'scsi-hba',
    pvscsi: 'scsi-hba',
  }
  for (const [name, kind] of Object.entries(expect)) assert.equal(classifyStorage(real, name).kind, kind, name)
  for (const nic of ['virtio-net-pci', 'e1000', 'e1000e', 'rtl8139', 'vmxnet3'])
    assert.equal(classifyNic(real, nic).bus, 'pci', nic)
})
