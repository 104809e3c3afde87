import assert from 'node:assert/strict'
import path from 'node:path'
import { describe, test } from 'node:test'
import { HwimageError } from '../errors.js'
import { parseModulesAlias } from '../kernel/module-indexes.js'
import { loadImageKernel, type ImageKernel } from './image-kernel.js'
import { machine, pci } from './inventory.fixture.js'
import { preflight } from './preflight.js'

// Aliases as file2alias writes them (the real lines of Debian's 6.1 kernel for these drivers).
const ALIASES = `
alias pci:v*d*sv*sd*bc01sc06i01* ahci
alias pci:v00008086d00002922sv*sd*bc*sc*i* ahci
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000
alias pci:v00001000d00000097sv*sd*bc*sc*i* mpt3sas
alias pci:v000014E4d00001657sv*sd*bc*sc*i* tg3
`
const generic = {
  aliases: parseModulesAlias(ALIASES),
  builtin: new Set<string>(),
  builtinAliases: [],
  modules: new Set(['ahci', 'virtio_pci', 'e1000', 'mpt3sas', 'tg3']),
}

function kernel(flavor: string, modules: string[], builtin: string[] = []): ImageKernel {
  const aliases = generic.aliases.filter((a) => modules.includes(a.module))
  return {
    source: 'test',
    flavor,
    version: '6.1.0-57-amd64',
    modules: new Set(modules),
    aliases,
    builtin: new Set(builtin),
    builtinAliases: [],
  }
}

const AHCI = pci('0000:00:1f.2', '8086', '2922', '010601')
const SAS3008 = pci('0000:03:00.0', '1000', '0097', '010700')
const E1000 = pci('0000:00:05.0', '8086', '100e', '020000')
const TG3 = pci('0000:02:00.0', '14e4', '1657', '020000', ['103c', '22be'])
const VIRTIO_NET = pci('0000:00:03.0', '1af4', '1000', '020000', ['1af4', '0001'])

describe('preflight()', () => {
  test("passes when the chosen disk's controller and a linked NIC have drivers, naming them", () => {
    const v = preflight(machine([AHCI], [{ dev: E1000, link: true }]), kernel('server', ['ahci', 'e1000']), {
      diskPath: '/dev/sda',
    })
    assert.equal(v.ok, true)
    assert.deepEqual(v.problems, [])
    assert.deepEqual(
      v.checked.devices.map((d) => [d.role, d.for, d.id, d.drivers]),
      [
        ['disk-controller', '/dev/sda', '8086:2922', ['ahci']],
        ['nic', 'eth0', '8086:100e', ['e1000']],
      ],
    )
  })

  test("refuses a disk on a controller the image's kernel lacks, naming the device, the module and the flavor", () => {
    const v = preflight(machine([SAS3008], [{ dev: E1000, link: true }]), kernel('cloud', ['ahci', 'e1000']), {
      diskPath: '/dev/sda',
      generic,
    })
    assert.equal(v.ok, false)
    assert.equal(v.problems.length, 1)
    const p = v.problems[0]!
    assert.equal(p.role, 'disk-controller')
    assert.equal(p.device.address, '0000:03:00.0')
    assert.deepEqual(p.genericModules, ['mpt3sas'])
    assert.equal(
      p.message,
      "the image's kernel (cloud 6.1.0-57-amd64) has no driver for 1000:0097 (Storage/sas, mpt3sas) at 0000:03:00.0: the disk controller has no driver; use kernel.flavor: generic",
    )
  })

  test('for the server flavor the fix also names the module to add', () => {
    const v = preflight(machine([SAS3008], []), kernel('server', ['ahci']), { generic })
    assert.match(
      v.problems[0]!.message,
      /add it with kernel\.modules\.add: \[mpt3sas\], or use kernel\.flavor: generic$/,
    )
  })

  test('without the generic kernel the message names the class; with it, says when nothing drives the device', () => {
    const odd = pci('0000:04:00.0', '1234', '5678', '010400')
    const a = preflight(machine([odd], []), kernel('server', ['ahci']))
    assert.equal(
      a.problems[0]!.message,
      "the image's kernel (server 6.1.0-57-amd64) has no driver for 1234:5678 (Storage/raid) at 0000:04:00.0: the disk controller has no driver; a kernel with a driver for this device is needed",
    )
    const b = preflight(machine([odd], []), kernel('server', ['ahci']), { generic })
    assert.match(b.problems[0]!.message, /no module of Debian's generic kernel drives it either$/)
  })

  test('only the chosen disk counts: a second disk on an undriven controller does not refuse the install', () => {
    const inv = machine([AHCI, SAS3008], [])
    assert.equal(preflight(inv, kernel('cloud', ['ahci']), { diskPath: '/dev/sda' }).ok, true)
    assert.equal(preflight(inv, kernel('cloud', ['ahci']), { diskPath: 'sdb' }).ok, false)
    // Without a disk, every fixed disk is checked.
    const all = preflight(inv, kernel('cloud', ['ahci']))
    assert.deepEqual(all.checked.disks, ['/dev/sda', '/dev/sdb'])
    assert.deepEqual(
      all.problems.map((p) => p.device.address),
      ['0000:03:00.0'],
    )
  })

  test('one NIC with a link and a driver is enough; unlinked NICs are not checked', () => {
    const k = kernel('cloud', ['ahci', 'e1000'])
    assert.equal(
      preflight(
        machine(
          [AHCI],
          [
            { dev: TG3, link: true },
            { dev: E1000, link: true },
          ],
        ),
        k,
        { diskPath: '/dev/sda' },
      ).ok,
      true,
    )
    const v = preflight(
      machine(
        [AHCI],
        [
          { dev: E1000, link: false },
          { dev: TG3, link: true },
        ],
      ),
      k,
      { diskPath: '/dev/sda', generic },
    )
    assert.equal(v.ok, false)
    assert.deepEqual(
      v.problems.map((p) => [p.role, p.device.address, p.genericModules]),
      [['nic', '0000:02:00.0', ['tg3']]],
    )
    assert.match(
      v.problems[0]!.message,
      /14e4:1657 \(Net\/ethernet, tg3\) at 0000:02:00\.0: no NIC with a link has a driver; use kernel\.flavor: generic/,
    )
    // Every linked NIC undriven: each is named.
    const w = preflight(
      machine(
        [AHCI],
        [
          { dev: TG3, link: true },
          { dev: { ...TG3, address: '0000:02:00.1' }, link: true },
        ],
      ),
      k,
      { diskPath: '/dev/sda' },
    )
    assert.deepEqual(
      w.problems.map((p) => p.device.address),
      ['0000:02:00.0', '0000:02:00.1'],
    )
  })

  test('a driver built into vmlinuz counts, with aliases borrowed from the generic kernel (6.1 lists none for built-ins)', () => {
    const cloudish = kernel('cloud', [], ['virtio_pci'])
    const inv = machine(
      [pci('0000:00:04.0', '1af4', '1042', '010000', ['1af4', '1100'])],
      [{ dev: VIRTIO_NET, link: true }],
    )
    assert.equal(preflight(inv, cloudish, { diskPath: '/dev/sda', generic }).ok, true)
    // Without anyone to borrow from, the built-in driver's devices are unknown to it.
    assert.equal(preflight(inv, cloudish, { diskPath: '/dev/sda' }).ok, false)
  })

  test('a device known by ids and class only (no modalias) is matched field by field', () => {
    const { modalias: _, ...bare } = AHCI
    const v = preflight(machine([bare], []), kernel('server', ['ahci']))
    assert.deepEqual(v.checked.devices[0]!.drivers, ['ahci'])
  })

  test('a disk without a PCI controller (dm, loop) is skipped; a disk not in the inventory is NOT_FOUND', () => {
    const inv = machine([AHCI], [])
    inv.disks.push({
      path: '/dev/loop1',
      name: 'loop1',
      sizeBytes: 1 << 20,
      logicalSectorSize: 512,
      physicalSectorSize: 512,
      rotational: false,
      removable: false,
    })
    const v = preflight(inv, kernel('server', []), { diskPath: '/dev/loop1' })
    assert.equal(v.ok, true)
    assert.deepEqual(v.checked.skipped, ['/dev/loop1'])
    assert.throws(
      () => preflight(inv, kernel('server', []), { diskPath: '/dev/sdz' }),
      (e: unknown) =>
        e instanceof HwimageError &&
        e.code === 'NOT_FOUND' &&
        e.exitCode === 2 &&
        /\/dev\/sda, \/dev\/loop1/.test(e.hint ?? ''),
    )
  })
})

test('loadImageKernel() names what is missing: no manifest (NOT_FOUND), no raw image (FORMAT_IMAGE)', async () => {
  const os = await import('node:os')
  const fs = await import('node:fs/promises')
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hwimage-imgk-'))
  try {
    await assert.rejects(
      loadImageKernel(dir),
      (e: unknown) => e instanceof HwimageError && e.code === 'NOT_FOUND' && e.exitCode === 2,
    )
    await fs.writeFile(path.join(dir, 'manifest.json'), '{')
    await assert.rejects(loadImageKernel(dir), (e: unknown) => e instanceof HwimageError && e.code === 'FORMAT_IMAGE')
    const manifest = {
      kernel: { flavor: 'server', version: '6.1.0-57-amd64', modules: ['ahci'] },
      partitions: [{ number: 1, firstLba: '2048', filesystem: 'ext4', label: 'root' }],
      image: { file: 'x.img', sectorSize: 512 },
    }
    await fs.writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest))
    await assert.rejects(
      loadImageKernel(dir),
      (e: unknown) => e instanceof HwimageError && e.code === 'FORMAT_IMAGE' && /byte 1048576/.test(e.message),
    )
    // An image file whose "root partition" holds no ext4.
    await fs.writeFile(path.join(dir, 'x.img'), new Uint8Array(4 << 20))
    await assert.rejects(loadImageKernel(dir), (e: unknown) => e instanceof HwimageError && e.code === 'FORMAT_IMAGE')
  } finally {
    await fs.rm(dir, { recursive: true, force: true })
  }
})
