import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InputError } from '../errors.js'
import { classOfModalias, parseInventory } from './inventory.js'
import { classCodesOf, classNameOf } from './pci-classes.js'

const LSPCI_NNK = `00:00.0 Host bridge [0600]: Intel Corporation 82G33/G31/P35/P31 Express DRAM Controller [8086:29c0]
\tSubsystem: Red Hat, Inc. QEMU Virtual Machine [1af4:1100]
00:02.0 Ethernet controller [0200]: Intel Corporation 82574L Gigabit Network Connection [8086:10d3]
\tSubsystem: Intel Corporation Device [8086:0000]
\tKernel driver in use: e1000e
\tKernel modules: e1000e
00:1f.2 SATA controller [0106]: Intel Corporation 82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode] [8086:2922] (rev 02)
\tSubsystem: Red Hat, Inc. QEMU Virtual Machine [1af4:1100]
\tKernel driver in use: ahci
`

const LSPCI_VVNNK = `0000:00:1f.2 SATA controller [0106]: Intel Corporation 82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode] [8086:2922] (rev 02) (prog-if 01 [AHCI 1.0])
\tSubsystem: Red Hat, Inc. QEMU Virtual Machine [1af4:1100]
\tControl: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx+
\tRegion 5: Memory at fea1a000 (32-bit, non-prefetchable) [size=4K]
\tKernel driver in use: ahci
`

const POPULATION = `PCI Devices Population
======================

### Storage/ata (PCI)

Total devices: 30

| ID            | MFG         | Name                         | Count |
|---------------|-------------|------------------------------|-------|
| pci:1022-7901 | AMD         | FCH SATA Controller [AHCI... | 20    |
| pci:8086-2922 | Intel       | 82801IR/IO/IH (ICH9R/DO/D... | 10    |

### Net/ethernet (PCI)

| ID            | MFG         | Name                         | Count |
|---------------|-------------|------------------------------|-------|
| pci:10ec-8168 | Realtek ... | RTL8111/8168/8411 PCI Exp... | 70    |
`

test('parseInventory() reads lspci -nnk with class, ids and subsystem', () => {
  const inv = parseInventory(LSPCI_NNK, 'lab.txt')
  assert.equal(inv.format, 'lspci')
  assert.equal(inv.devices.length, 3)
  const sata = inv.devices[2]!
  assert.equal(sata.id, 'pci:8086-2922')
  assert.equal(sata.class, 'Storage/ata')
  assert.deepEqual(sata.pci, {
    vendor: '8086',
    device: '2922',
    classes: [{ base: '01', sub: '06' }],
    subvendor: '1AF4',
    subdevice: '1100',
  })
  assert.equal(inv.devices[1]!.class, 'Net/ethernet')
  assert.equal(inv.devices[0]!.class, 'Bridge')
})

test('parseInventory() takes the programming interface from lspci -vvnnk', () => {
  const inv = parseInventory(LSPCI_VVNNK, 'vv.txt')
  assert.equal(inv.format, 'lspci')
  assert.deepEqual(inv.devices[0]!.pci!.classes, [{ base: '01', sub: '06', progIf: '01' }])
})

test('parseInventory() reads modaliases, bare or prefixed with their sysfs path, and counts repeats', () => {
  const inv = parseInventory(
    'pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01\n/sys/bus/pci/devices/0000:00:02.0/modalias:pci:v00008086d000010D3sv00008086sd00000000bc02sc00i00\nusb:v1D6Bp0003d0601dc09dsc00dp03ic09isc00ip00in00\nusb:v1D6Bp0003d0601dc09dsc00dp03ic09isc00ip00in00\n',
    'sys.txt',
  )
  assert.equal(inv.format, 'modalias')
  assert.deepEqual(
    inv.devices.map((d) => [d.class, d.count]),
    [
      ['Storage/ata', 1],
      ['Net/ethernet', 1],
      ['usb', 2],
    ],
  )
})

test('parseInventory() reads the population table by section, with the section class codes', () => {
  const inv = parseInventory(POPULATION, 'pop.md')
  assert.equal(inv.format, 'population')
  assert.deepEqual(
    inv.devices.map((d) => [d.id, d.class, d.count]),
    [
      ['pci:1022-7901', 'Storage/ata', 20],
      ['pci:8086-2922', 'Storage/ata', 10],
      ['pci:10ec-8168', 'Net/ethernet', 70],
    ],
  )
  assert.deepEqual(inv.devices[0]!.pci!.classes, [{ base: '01', sub: '06' }])
})

test('parseInventory() rejects an unknown format with FORMAT_INVENTORY naming the file', () => {
  assert.throws(
    () => parseInventory('hello world\nthis is not hardware\n', 'notes.txt'),
    (e: unknown) => {
      assert.ok(e instanceof InputError)
      assert.equal(e.code, 'FORMAT_INVENTORY')
      assert.equal(e.exitCode, 2)
      assert.match(e.message, /"notes\.txt": unknown format/)
      return true
    },
  )
  assert.throws(() => parseInventory('', 'empty.txt'), /"empty\.txt": unknown format/)
})

test('parseInventory() asks for -nn when lspci output has no numeric ids', () => {
  assert.throws(
    () => parseInventory('00:1f.2 SATA controller: Intel Corporation 82801IR SATA Controller (rev 02)\n', 'plain.txt'),
    (e: unknown) => {
      assert.ok(e instanceof InputError)
      assert.equal(e.code, 'FORMAT_INVENTORY')
      assert.match(e.hint ?? '', /-nn/)
      return true
    },
  )
})

test('classNameOf() and classCodesOf() map between class codes and population sections', () => {
  assert.equal(classNameOf('01', '08'), 'Storage/nvme')
  assert.equal(classNameOf('0c', '03'), 'Usb controller')
  assert.equal(classNameOf('02', '07'), 'Net/infiniband')
  assert.equal(classNameOf('ff', '00'), 'PCI class FF00')
  assert.deepEqual(classCodesOf('Storage/raid'), [{ base: '01', sub: '04' }])
  assert.deepEqual(classCodesOf('No such section'), [])
  assert.equal(classOfModalias('virtio:d00000001v00001AF4'), 'virtio')
})
