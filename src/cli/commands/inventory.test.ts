import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { collectInventory } from '../../deploy/inventory.js'
import { SysfsFixture } from '../../deploy/sysfs-fixture.js'
import { HwimageError } from '../../errors.js'
import type { CommandContext } from '../command.js'
import { inventoryCommand } from './inventory.js'

function context() {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (c) => (out += c))
  stderr.on('data', (c) => (err += c))
  const ctx: CommandContext = { stdout, stderr, signal: new AbortController().signal }
  return { ctx, out: () => out, err: () => err }
}

// A machine with an AHCI disk and two NICs: e1000 (down) and an Intel Wireless 8265 with a link.
async function machine(): Promise<SysfsFixture> {
  const f = await SysfsFixture.create()
  const ahci = await f.pci('0000:00:1f.2', { vendor: '8086', device: '2922', sv: '1af4', sd: '1100', class: '010601', driver: 'ahci' })
  await f.write(`${ahci}/ata1/host0/target0:0:0/0:0:0:0`, { model: 'QEMU HARDDISK' })
  await f.write(`${ahci}/ata1/host0/target0:0:0/0:0:0:0/block/sda`, { size: '41943040', 'queue/logical_block_size': '512', 'queue/physical_block_size': '512', 'queue/rotational': '1', removable: '0' })
  await f.link(`${ahci}/ata1/host0/target0:0:0/0:0:0:0/block/sda/device`, `${ahci}/ata1/host0/target0:0:0/0:0:0:0`)
  await f.link('block/sda', `${ahci}/ata1/host0/target0:0:0/0:0:0:0/block/sda`)
  const e1000 = await f.pci('0000:00:05.0', { vendor: '8086', device: '100e', sv: '1af4', sd: '1100', class: '020000', driver: 'e1000' })
  await f.write(`${e1000}/net/ens4`, { address: '52:54:00:00:00:04', carrier: '0' })
  await f.link(`${e1000}/net/ens4/device`, e1000)
  await f.link('class/net/ens4', `${e1000}/net/ens4`)
  const wifi = await f.pci('0000:03:00.0', { vendor: '8086', device: '24fd', sv: '8086', sd: '0010', class: '028000', driver: 'iwlwifi' }, 'devices/pci0000:00/0000:00:1c.0')
  await f.write(`${wifi}/net/wlp3s0`, { address: '34:13:e8:00:00:01', carrier: '1' })
  await f.link(`${wifi}/net/wlp3s0/device`, wifi)
  await f.link('class/net/wlp3s0', `${wifi}/net/wlp3s0`)
  await f.write('devices/system/cpu', { online: '0-1' })
  await f.write('proc', { meminfo: 'MemTotal:        4096000 kB' })
  return f
}

const TEST_IMAGE = process.env.HWIMAGE_TEST_IMAGE_DIR ?? path.resolve('.cache/test-image')
const GENERIC_DEB = '/var/cache/hwimage/debs/linux-image-6.1.0-57-amd64_6.1.192-3_amd64.deb'

describe('hwimage inventory', () => {
  let f: SysfsFixture
  let roots: string[]
  before(async () => {
    f = await machine()
    roots = ['--sysfs', f.root, '--procfs', `${f.root}/proc`]
  })
  after(async () => {
    await f.remove()
  })

  test('--json prints the inventory collectInventory() reads, as one document', async () => {
    const { ctx, out } = context()
    assert.equal(await inventoryCommand.run([...roots, '--json'], ctx), 0)
    assert.deepEqual(JSON.parse(out()), await collectInventory({ sysfs: f.root, procfs: `${f.root}/proc` }))
  })

  test('prints readable tables: firmware, CPUs, memory, PCI, disks, NICs', async () => {
    const { ctx, out } = context()
    assert.equal(await inventoryCommand.run(roots, ctx), 0)
    const text = out()
    assert.match(text, /^firmware {2}bios\ncpus {6}2\nmemory {4}3\.9 GiB\n/)
    assert.match(text, /\n0000:00:1f\.2 +8086:2922 +1af4:1100 +010601 +ahci\n/)
    assert.match(text, /\n\/dev\/sda +20\.0 GiB +512\/512 +QEMU HARDDISK +- +- +yes +no +0000:00:1f\.2\n/)
    assert.match(text, /\nens4 +52:54:00:00:00:04 +no +e1000 +0000:00:05\.0\n/)
    assert.match(text, /\nwlp3s0 +34:13:e8:00:00:01 +up +iwlwifi +0000:03:00\.0\n/)
  })

  test('--help shows the usage and an example', async () => {
    const { ctx, out } = context()
    assert.equal(await inventoryCommand.run(['--help'], ctx), 0)
    assert.match(out(), /Usage: hwimage inventory \[--json\]/)
    assert.match(out(), /hwimage inventory --check out\/ --disk \/dev\/nvme0n1/)
  })

  test('--disk without --check is a usage error (exit 2)', async () => {
    const { ctx } = context()
    await assert.rejects(inventoryCommand.run([...roots, '--disk', '/dev/sda'], ctx), (e: unknown) => e instanceof HwimageError && e.code === 'USAGE' && e.exitCode === 2)
  })

  const skip = existsSync(path.join(TEST_IMAGE, 'manifest.json')) ? false : `no test image at ${TEST_IMAGE} (make test-images)`

  test('--check of the server test image: exit 1 when the only NIC with a link is wireless, naming it', { skip }, async () => {
    const { ctx, out } = context()
    const generic = existsSync(GENERIC_DEB) ? ['--generic-kernel', GENERIC_DEB] : ['--generic-kernel', '/nonexistent.deb']
    assert.equal(await inventoryCommand.run([...roots, '--check', TEST_IMAGE, '--disk', '/dev/sda', ...generic], ctx), 1)
    const text = out()
    assert.match(text, /\ndisk-controller +\/dev\/sda +0000:00:1f\.2 +8086:2922 +ahci\n/)
    assert.match(text, /\nnic +wlp3s0 +0000:03:00\.0 +8086:24fd +NONE\n/)
    assert.match(text, /REFUSED: the image's kernel \(server 6\.1\.0-57-amd64\) has no driver for 8086:24fd \(Net\/other/)
    if (existsSync(GENERIC_DEB)) assert.match(text, /\(Net\/other, iwlwifi\) at 0000:03:00\.0: no NIC with a link has a driver; add it with kernel\.modules\.add: \[iwlwifi\]/)
  })

  test('--check --json: exit 0 when the e1000 has the link, with the verdict beside the inventory', { skip }, async () => {
    await f.write('devices/pci0000:00/0000:00:05.0/net/ens4', { carrier: '1' })
    await f.write('devices/pci0000:00/0000:00:1c.0/0000:03:00.0/net/wlp3s0', { carrier: '0' })
    try {
      const { ctx, out } = context()
      assert.equal(await inventoryCommand.run([...roots, '--check', TEST_IMAGE, '--json'], ctx), 0)
      const doc = JSON.parse(out())
      assert.equal(doc.verdict.ok, true)
      assert.deepEqual(doc.verdict.checked.devices.map((d: { for: string; drivers: string[] }) => [d.for, d.drivers]), [
        ['/dev/sda', ['ahci']],
        ['ens4', ['e1000']],
      ])
      assert.equal(doc.inventory.nics.length, 2)
    } finally {
      await f.write('devices/pci0000:00/0000:00:05.0/net/ens4', { carrier: '0' })
      await f.write('devices/pci0000:00/0000:00:1c.0/0000:03:00.0/net/wlp3s0', { carrier: '1' })
    }
  })
})
