// `hwimage inventory --check` against the real server test image `make test` builds: a
// machine whose only NIC with a link is wireless is refused, naming the device and the
// generic kernel's module (Debian's generic kernel fetched into the package cache once).

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { context, machine } from '../../src/cli/commands/inventory.fixture.js'
import { inventoryCommand } from '../../src/cli/commands/inventory.js'
import type { SysfsFixture } from '../../src/deploy/sysfs.fixture.js'
import { testImage } from './fixture.js'

const TEST_IMAGE = testImage().dir
let f: SysfsFixture
let roots: string[]
before(async () => {
  f = await machine()
  roots = ['--sysfs', f.root, '--procfs', `${f.root}/proc`]
})
after(async () => {
  await f.remove()
})

test('--check of the server test image: exit 1 when the only NIC with a link is wireless, naming it', async () => {
  const { ctx, out } = context()
  assert.equal(await inventoryCommand.run([...roots, '--check', TEST_IMAGE, '--disk', '/dev/sda'], ctx), 1)
  const text = out()
  assert.match(text, /\ndisk-controller +\/dev\/sda +0000:00:1f\.2 +8086:2922 +ahci\n/)
  assert.match(text, /\nnic +wlp3s0 +0000:03:00\.0 +8086:24fd +NONE\n/)
  assert.match(text, /REFUSED: the image's kernel \(server [^)]+\) has no driver for 8086:24fd \(Net\/other/)
  assert.match(
    text,
    /\(Net\/other, iwlwifi\) at 0000:03:00\.0: no NIC with a link has a driver; add it with kernel\.modules\.add: \[iwlwifi\]/,
  )
})

test('--check --json: exit 0 when the e1000 has the link, with the verdict beside the inventory', async () => {
  await f.write('devices/pci0000:00/0000:00:05.0/net/ens4', { carrier: '1' })
  await f.write('devices/pci0000:00/0000:00:1c.0/0000:03:00.0/net/wlp3s0', { carrier: '0' })
  try {
    const { ctx, out } = context()
    assert.equal(await inventoryCommand.run([...roots, '--check', TEST_IMAGE, '--json'], ctx), 0)
    const doc = JSON.parse(out())
    assert.equal(doc.verdict.ok, true)
    assert.deepEqual(
      doc.verdict.checked.devices.map((d: { for: string; drivers: string[] }) => [d.for, d.drivers]),
      [
        ['/dev/sda', ['ahci']],
        ['ens4', ['e1000']],
      ],
    )
    assert.equal(doc.inventory.nics.length, 2)
  } finally {
    await f.write('devices/pci0000:00/0000:00:05.0/net/ens4', { carrier: '0' })
    await f.write('devices/pci0000:00/0000:00:1c.0/0000:03:00.0/net/wlp3s0', { carrier: '1' })
  }
})
