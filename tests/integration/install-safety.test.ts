// The installer's refusals on real block devices (loop devices over files): a disk with a
// partition table needs --yes; a mounted partition, active swap, a partition as target and
// a 4096-byte-sector disk are refused before anything is written; the running system's
// disk is reported as such; --disk-hint finds a disk. (Device-mapper and md holders are
// tested on a sysfs tree in src/install/target-safety.test.ts: this CI kernel has neither.)

import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { HwimageError } from '../../src/errors.js'
import { garbageFile, makeFixtureImage, type FixtureImage } from '../../src/install/fixture-image.js'
import { install } from '../../src/install/install.js'
import { run } from '../../src/tools/run.js'
import { partitionNodes } from './partitions.js'

const MiB = 1 << 20
let dir: string
let fx: FixtureImage
let n = 0

before(async () => {
  dir = await mkdtemp(join(os.tmpdir(), 'hwimage-install-safety-'))
  fx = await makeFixtureImage(dir, { formats: ['zst'] })
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** A loop device over a fresh garbage file; detached by the returned function. */
async function loopDevice(opts: { sectorSize?: number } = {}): Promise<{ dev: string; detach: () => Promise<void> }> {
  const file = join(dir, `disk-${++n}.raw`)
  await garbageFile(file, 64 * MiB, n)
  const args = ['losetup', '--find', '--show', ...(opts.sectorSize ? ['--sector-size', String(opts.sectorSize)] : []), file]
  const dev = (await run(args)).stdout.trim()
  return {
    dev,
    detach: async () => {
      await run(['partx', '--delete', dev], { okStatus: [0, 1] })
      await run(['losetup', '--detach', dev])
    },
  }
}

/** Partition 1 of `dev`, as written by the install (see partitions.ts for why the node is ours). */
const partitionOne = async (dev: string): Promise<string> => (await partitionNodes(dev, dir)).partition(1)

const digest = async (dev: string): Promise<string> => createHash('sha256').update(await readFile(dev)).digest('hex')
const code = (c: string, re?: RegExp) => (e: unknown) => e instanceof HwimageError && e.code === c && (!re || re.test(e.message))

test('a block device that holds a partition table is overwritten only with --yes or a yes from the user', async () => {
  const { dev, detach } = await loopDevice()
  try {
    const first = await install({ source: fx.zst, disk: dev })
    assert.equal(first.target.existingTable, undefined, 'garbage is not a partition table')
    const before = await digest(dev)
    await assert.rejects(install({ source: fx.zst, disk: dev }), code('CONFIRMATION_REQUIRED', /holds a GPT partition table/))
    await assert.rejects(install({ source: fx.zst, disk: dev, confirm: async () => false }), code('CONFIRMATION_REQUIRED'))
    assert.equal(await digest(dev), before, 'nothing was written')
    let asked = ''
    await install({ source: fx.zst, disk: dev, confirm: async (q) => ((asked = q), true) })
    assert.match(asked, /holds a GPT partition table\. Overwrite it\?/)
    const r = await install({ source: fx.zst, disk: dev, yes: true })
    assert.equal(r.target.existingTable, 'GPT')
  } finally {
    await detach()
  }
})

test('a disk with a mounted partition is refused, naming the mount point, and so is a partition as target', async () => {
  const { dev, detach } = await loopDevice()
  const mnt = join(dir, `mnt-${n}`)
  await mkdir(mnt)
  try {
    await install({ source: fx.zst, disk: dev })
    const p1 = await partitionOne(dev)
    await run(['mount', '-o', 'ro', p1, mnt])
    try {
      const before = await digest(dev)
      await assert.rejects(install({ source: fx.zst, disk: dev, yes: true }), code('DEVICE_BUSY', new RegExp(`${dev}p1 is mounted at ${mnt}`)))
      const plan = await install({ source: fx.zst, disk: dev, dryRun: true })
      assert.deepEqual(plan.target.busy.map((b) => b.kind), ['mounted'])
      assert.equal(await digest(dev), before)
    } finally {
      await run(['umount', mnt])
    }
    await assert.rejects(install({ source: fx.zst, disk: p1, yes: true }), code('TARGET_INVALID', /is a partition/))
  } finally {
    await detach()
  }
})

test('a disk with active swap on a partition is refused', async () => {
  const { dev, detach } = await loopDevice()
  try {
    await install({ source: fx.zst, disk: dev })
    const p1 = await partitionOne(dev)
    await run(['mkswap', p1])
    await run(['swapon', p1])
    try {
      await assert.rejects(install({ source: fx.zst, disk: dev, yes: true }), code('DEVICE_BUSY', new RegExp(`${dev}p1 is active swap`)))
    } finally {
      await run(['swapoff', p1])
    }
  } finally {
    await detach()
  }
})

test('a 512-byte-sector image is refused on a 4096-byte-sector disk, before anything is written', async () => {
  const { dev, detach } = await loopDevice({ sectorSize: 4096 })
  try {
    const before = await digest(dev)
    await assert.rejects(install({ source: fx.zst, disk: dev }), code('SECTOR_SIZE_MISMATCH', /512-byte sectors, the disk has 4096-byte logical sectors/))
    assert.equal(await digest(dev), before)
  } finally {
    await detach()
  }
})

test("the disk holding the running system's root file system is reported as such (dry run)", async () => {
  const source = (await run(['findmnt', '--noheadings', '--output', 'SOURCE', '--nofsroot', '/'])).stdout.trim()
  assert.match(source, /^\/dev\//, 'the root file system is on a block device')
  const disk = `/dev/${(await run(['lsblk', '--noheadings', '--nodeps', '--output', 'PKNAME', source])).stdout.trim() || source.replace('/dev/', '')}`
  const plan = await install({ source: fx.zst, disk, dryRun: true })
  const kinds = plan.target.busy.map((b) => b.kind)
  assert.ok(kinds.includes('root'), `busy: ${JSON.stringify(plan.target.busy)}`)
  assert.ok(kinds.includes('mounted'))
})

test('--disk-hint finds a loop device by name and installs onto it', async () => {
  const { dev, detach } = await loopDevice()
  try {
    const r = await install({ source: fx.zst, diskHints: { name: dev.replace('/dev/', '') } })
    assert.equal(r.target.path, dev)
    assert.match((await run(['sgdisk', '-v', dev])).stdout, /No problems found/)
  } finally {
    await detach()
  }
})
