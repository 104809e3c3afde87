import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { collectInventory } from '../../deploy/inventory.js'
import type { SysfsFixture } from '../../deploy/sysfs.fixture.js'
import { HwimageError } from '../../errors.js'
import { context, machine } from './inventory.fixture.js'
import { inventoryCommand } from './inventory.js'

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
    await assert.rejects(
      inventoryCommand.run([...roots, '--disk', '/dev/sda'], ctx),
      (e: unknown) => e instanceof HwimageError && e.code === 'USAGE' && e.exitCode === 2,
    )
  })
})
