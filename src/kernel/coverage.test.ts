import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { measureCoverage } from './coverage.js'
import { parseInventory } from './inventory.js'
import { makeKernelFixture, type KernelFixture } from './kernel.fixture.js'
import { openKernel, type KernelTree } from './kernel-package.js'
import { closeUnderDependencies } from './module-set.js'

const POPULATION = `### Storage/ata (PCI)
| pci:1022-7901 | AMD         | FCH SATA Controller [AHCI... | 60    |
| pci:8086-2922 | Intel       | ICH9 SATA                    | 30    |
| pci:1234-0001 | Nobody      | Some AHCI controller         | 10    |
### Net/ethernet (PCI)
| pci:10ec-8168 | Realtek ... | RTL8111/8168/8411 PCI Exp... | 70    |
| pci:8086-10d3 | Intel       | 82574L                       | 20    |
| pci:1924-0803 | Solarflare  | SFC9020                      | 8     |
| pci:10ec-8139 | Realtek ... | RTL-8100/8101L/8139          | 2     |
| pci:abcd-0001 | Nobody      | Unsupported NIC              | 5     |
### Usb controller (PCI)
| pci:8086-1e31 | Intel       | 7 Series xHCI                | 50    |
| pci:8086-1e26 | Intel       | 7 Series EHCI                | 50    |
`

let fx: KernelFixture
let tree: KernelTree
before(async () => {
  fx = await makeKernelFixture()
  tree = await openKernel(fx.root)
})
after(() => fx.cleanup())

test('measureCoverage() weighs devices by count, relative to what the whole kernel drives', () => {
  const set = closeUnderDependencies(tree, ['ahci', 'r8169', 'e1000e'])
  const r = measureCoverage(
    { name: 'small', tree, modules: set },
    { name: 'all', tree, modules: new Set(tree.modules.keys()) },
    [parseInventory(POPULATION, 'pop.md')],
  )
  const ata = r.classes.find((c) => c.class === 'Storage/ata')!
  // 1022-7901 and 1234-0001 match ahci's class alias (bc01sc06): the section says SATA.
  assert.deepEqual([ata.devices, ata.baselineDriven, ata.covered, ata.undriven, ata.share], [100, 100, 100, 0, 1])
  const eth = r.classes.find((c) => c.class === 'Net/ethernet')!
  assert.deepEqual([eth.devices, eth.baselineDriven, eth.covered, eth.undriven], [105, 100, 90, 5])
  assert.equal(eth.share, 0.9)
  assert.deepEqual(
    eth.notCovered.map((d) => [d.id, d.count, d.modules]),
    [
      ['pci:1924-0803', 8, ['sfc']],
      ['pci:10ec-8139', 2, ['8139too']],
    ],
  )
  assert.equal(eth.setModuleBytes, tree.modules.get('r8169')!.bytes + tree.modules.get('e1000e')!.bytes)
  const ahciWithDeps = ['ahci', 'libata', 'scsi_mod'].reduce((s, m) => s + tree.modules.get(m)!.bytes, 0)
  assert.equal(ata.setModuleBytes, ahciWithDeps)
  assert.deepEqual(
    r.classes.slice(0, 3).map((c) => c.class),
    ['Storage/ata', 'Net/ethernet', 'Usb controller'],
  )
})

test('measureCoverage() counts built-in drivers as present in every set', () => {
  const r = measureCoverage(
    { name: 'none', tree, modules: new Set() },
    { name: 'all', tree, modules: new Set(tree.modules.keys()) },
    [parseInventory(POPULATION, 'pop.md')],
  )
  const usb = r.classes.find((c) => c.class === 'Usb controller')!
  // Both controllers have unknown programming interfaces, so xhci_pci (module) and ehci_hcd (built in) both match.
  assert.deepEqual([usb.baselineDriven, usb.covered], [100, 100])
  assert.equal(r.set.modules, 0)
  assert.equal(r.set.footprintBytes, tree.vmlinuzBytes)
})

test('measureCoverage() matches lspci and modalias inventories with their full ids', () => {
  const lspci = parseInventory(
    '00:1f.2 SATA controller [0106]: Intel Corporation 82801IR SATA Controller [AHCI mode] [8086:2922] (rev 02) (prog-if 01 [AHCI 1.0])\n00:03.0 Ethernet controller [0200]: Solarflare SFC9020 [1924:0803]\n',
    'lab.txt',
  )
  const sys = parseInventory(
    'pci:v000010ECd00008139sv00001AF4sd00001100bc02sc00i00\nusb:v0781p5581d0100dc00dsc00dp00ic08isc06ip50in00\n',
    'sys.txt',
  )
  const set = closeUnderDependencies(tree, ['ahci', '8139too'])
  const r = measureCoverage(
    { name: 's', tree, modules: set },
    { name: 'all', tree, modules: new Set(tree.modules.keys()) },
    [lspci, sys],
  )
  const eth = r.classes.find((c) => c.class === 'Net/ethernet')!
  assert.deepEqual([eth.devices, eth.covered, eth.baselineDriven], [2, 1, 2])
  assert.deepEqual(
    r.classes.find((c) => c.class === 'usb')!.notCovered.map((d) => d.modules),
    [['usb_storage']],
  )
  assert.deepEqual(
    r.inventories.map((i) => [i.format, i.devices]),
    [
      ['lspci', 2],
      ['modalias', 2],
    ],
  )
})

test("measureCoverage() lends a module's aliases to a kernel that has the driver built in", () => {
  // Linux 6.1 records no aliases for built-in drivers: a kernel with ahci built in
  // borrows the aliases the baseline kernel has for the ahci module.
  const modules = new Map([...tree.modules].filter(([name]) => name !== 'ahci'))
  const builtinAhci: KernelTree = {
    ...tree,
    modules,
    builtin: new Set([...tree.builtin, 'ahci']),
    aliases: tree.aliases.filter((a) => a.module !== 'ahci'),
  }
  const r = measureCoverage(
    { name: 'all', tree: builtinAhci, modules: new Set(modules.keys()) },
    { name: 'all', tree, modules: new Set(tree.modules.keys()) },
    [parseInventory(POPULATION, 'pop.md')],
  )
  const ata = r.classes.find((c) => c.class === 'Storage/ata')!
  assert.deepEqual([ata.covered, ata.baselineDriven, ata.setModuleBytes], [100, 100, 0])
})
