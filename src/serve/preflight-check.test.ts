import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ImageKernel } from '../deploy/image-kernel.js'
import { machine, pci } from '../deploy/inventory.fixture.js'
import { parseModulesAlias } from '../kernel/module-indexes.js'
import { checkInventory } from './preflight-check.js'

// Aliases as Debian's 6.1 kernel lists them for these drivers (file2alias).
const ALIASES = `
alias pci:v*d*sv*sd*bc01sc06i01* ahci
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
`
const all = parseModulesAlias(ALIASES)
const generic = {
  aliases: all,
  builtin: new Set<string>(),
  builtinAliases: [],
  modules: new Set(['ahci', 'virtio_pci']),
}
// A cloud kernel: virtio, no SATA.
const cloud: ImageKernel = {
  source: 'test',
  flavor: 'cloud',
  version: '6.1.0-57-cloud-amd64',
  modules: new Set(['virtio_pci']),
  aliases: all.filter((a) => a.module === 'virtio_pci'),
  builtin: new Set(),
  builtinAliases: [],
}
const AHCI = pci('0000:00:1f.2', '8086', '2922', '010601')
const VIRTIO_BLK = pci('0000:00:05.0', '1af4', '1042', '010000', ['1af4', '1100'])
const VIRTIO_NET = pci('0000:00:03.0', '1af4', '1000', '020000', ['1af4', '0001'])
// sda on virtio, sdb on AHCI.
const inv = machine([VIRTIO_BLK, AHCI], [{ dev: VIRTIO_NET, link: true }])
const load = async () => cloud

test('checkInventory(): the disk the hints choose is checked; no hints: the first fixed disk', async () => {
  const first = await checkInventory(inv, [], load)
  assert.equal(first.kind, 'ok')
  assert.equal(first.kind === 'ok' && first.disk, '/dev/sda')
  const sdb = await checkInventory(inv, ['name=sdb'], load, async () => generic)
  assert.equal(sdb.kind, 'refused')
  assert.ok(sdb.kind === 'refused')
  assert.equal(sdb.disk, '/dev/sdb')
  assert.equal(
    sdb.message,
    "Cannot install /dev/sdb: the image's kernel (cloud 6.1.0-57-cloud-amd64) has no driver for 8086:2922 (Storage/ata, ahci) at 0000:00:1f.2: the disk controller has no driver; use kernel.flavor: generic",
  )
})

test('checkInventory(): without the generic kernel the refusal still names the device and the kernel flavor', async () => {
  const r = await checkInventory(inv, ['name=sdb'], load)
  assert.equal(r.kind, 'refused')
  assert.match(r.kind === 'refused' ? r.message : '', /\(cloud 6\.1\.0-57-cloud-amd64\) has no driver for 8086:2922/)
})

test('checkInventory(): hints that match no disk are DEVICE_SELECT listing the disks; an unreadable kernel is a skip', async () => {
  const none = await checkInventory(inv, ['serial=NOPE'], load)
  assert.equal(none.kind, 'no-disk')
  assert.ok(none.kind === 'no-disk')
  assert.equal(none.code, 'DEVICE_SELECT')
  assert.match(none.message, /no disk matches.*\/dev\/sda.*\/dev\/sdb/)
  const skipped = await checkInventory(inv, [], async () => {
    throw new Error('Cannot read image "x": no manifest.json in it')
  })
  assert.deepEqual(skipped, { kind: 'skipped', message: 'Cannot read image "x": no manifest.json in it' })
})
