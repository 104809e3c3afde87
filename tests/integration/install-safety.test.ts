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
import { garbageFile, makeFixtureImage, type FixtureImage } from '../../src/install/image.fixture.js'
import { install, planOfRefusal } from '../../src/install/install.js'
import type { InstallOptions } from '../../src/install/install-options.js'
import type { InstallReport } from '../../src/install/install-report.js'
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
  const args = [
    'losetup',
    '--find',
    '--show',
    ...(opts.sectorSize ? ['--sector-size', String(opts.sectorSize)] : []),
    file,
  ]
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

const digest = async (dev: string): Promise<string> =>
  createHash('sha256')
    .update(await readFile(dev))
    .digest('hex')
/** A dry run the install would refuse: it fails with the refusal's code, and the plan it showed. */
async function refusedDryRun(opts: InstallOptions, want: string): Promise<InstallReport> {
  const e = await install({ ...opts, dryRun: true }).then(
    () => undefined,
    (err: unknown) => err,
  )
  assert.ok(e instanceof HwimageError && e.code === want, `the dry run fails with ${want}: ${String(e)}`)
  const plan = planOfRefusal(e)
  assert.ok(plan, 'the refusal carries the plan it was found in')
  assert.equal(plan.refused?.code, want)
  return plan
}
const code = (c: string, re?: RegExp) => (e: unknown) =>
  e instanceof HwimageError && e.code === c && (!re || re.test(e.message))

test('a block device that holds a partition table is overwritten only with --yes or a yes from the user', async () => {
  const { dev, detach } = await loopDevice()
  try {
    const first = await install({ source: fx.zst, disk: dev })
    assert.equal(first.target.existingTable, undefined, 'garbage is not a partition table')
    const before = await digest(dev)
    await assert.rejects(
      install({ source: fx.zst, disk: dev }),
      code('CONFIRMATION_REQUIRED', /holds a GPT partition table/),
    )
    await assert.rejects(
      install({ source: fx.zst, disk: dev, confirm: async () => false }),
      code('CONFIRMATION_REQUIRED'),
    )
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
      await assert.rejects(
        install({ source: fx.zst, disk: dev, yes: true }),
        code('DEVICE_BUSY', new RegExp(`${dev}p1 is mounted at ${mnt}`)),
      )
      // Issue 12 item 7: the dry run used to exit 0 with BUSY in its plan.
      const plan = await refusedDryRun({ source: fx.zst, disk: dev }, 'DEVICE_BUSY')
      assert.deepEqual(
        plan.target.busy.map((b) => b.kind),
        ['mounted'],
      )
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
      await assert.rejects(
        install({ source: fx.zst, disk: dev, yes: true }),
        code('DEVICE_BUSY', new RegExp(`${dev}p1 is active swap`)),
      )
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
    await assert.rejects(
      install({ source: fx.zst, disk: dev }),
      code('SECTOR_SIZE_MISMATCH', /512-byte sectors, the disk has 4096-byte logical sectors/),
    )
    assert.equal(await digest(dev), before)
  } finally {
    await detach()
  }
})

test("the disk holding the running system's root file system is reported as such (dry run)", async () => {
  const source = (await run(['findmnt', '--noheadings', '--output', 'SOURCE', '--nofsroot', '/'])).stdout.trim()
  assert.match(source, /^\/dev\//, 'the root file system is on a block device')
  const disk = `/dev/${(await run(['lsblk', '--noheadings', '--nodeps', '--output', 'PKNAME', source])).stdout.trim() || source.replace('/dev/', '')}`
  const plan = await refusedDryRun({ source: fx.zst, disk }, 'DEVICE_BUSY')
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

test('a whole-disk file system or swap (no partition table) needs --yes, and the dry run names what it would destroy', async () => {
  // Issue 12 item 4: `mkfs.ext4 /dev/sdX` used to be overwritten without a question.
  const { dev, detach } = await loopDevice()
  try {
    await run(['mkfs.ext4', '-q', '-F', '-L', 'data', dev])
    const before = await digest(dev)
    await assert.rejects(
      install({ source: fx.zst, disk: dev }),
      code('CONFIRMATION_REQUIRED', /holds ext4 "data" at byte 1080/),
    )
    let asked = ''
    await assert.rejects(
      install({ source: fx.zst, disk: dev, confirm: async (q) => ((asked = q), false) }),
      code('CONFIRMATION_REQUIRED'),
    )
    assert.match(asked, /holds ext4 "data" at byte 1080\. Overwrite it\?/)
    const plan = await install({ source: fx.zst, disk: dev, dryRun: true })
    assert.deepEqual(
      plan.target.signatures.map((x) => [x.type, x.label]),
      [['ext4', 'data']],
    )
    assert.equal(await digest(dev), before, 'nothing was written')
    await run(['mkswap', dev])
    await assert.rejects(install({ source: fx.zst, disk: dev }), code('CONFIRMATION_REQUIRED', /holds swap/))
    await install({ source: fx.zst, disk: dev, yes: true })
    assert.match((await run(['sgdisk', '-v', dev])).stdout, /No problems found/)
  } finally {
    await detach()
  }
})

test('a loop device over the source file is refused as the source itself, and so is a disk that stores the source', async () => {
  // Issue 12 item 1: installing an image onto itself punched it to 1 MiB.
  const copy = join(dir, `self-${++n}.img`)
  await run(['cp', '--sparse=always', fx.img, copy])
  const dev = (await run(['losetup', '--find', '--show', copy])).stdout.trim()
  try {
    const before = await digest(copy)
    await assert.rejects(
      install({ source: copy, disk: dev, yes: true }),
      code('TARGET_INVALID', /loop device over the source file/),
    )
    await refusedDryRun({ source: copy, disk: dev }, 'TARGET_INVALID')
    assert.equal(await digest(copy), before, 'the image is untouched')
  } finally {
    await run(['losetup', '--detach', dev])
  }
  // The source on a file system of the target disk (here: the whole disk): refused too.
  const { dev: disk, detach } = await loopDevice()
  const mnt = join(dir, `mnt-src-${n}`)
  await mkdir(mnt)
  try {
    await run(['mkfs.ext4', '-q', '-F', disk])
    await run(['mount', disk, mnt])
    try {
      await run(['cp', fx.zst, join(mnt, 'image.img.zst')])
      const plan = await refusedDryRun({ source: join(mnt, 'image.img.zst'), disk }, 'DEVICE_BUSY')
      assert.ok(plan.target.busy.length > 0)
    } finally {
      await run(['umount', mnt])
    }
  } finally {
    await detach()
  }
})

test('a real I/O error from the kernel mid-image (a loop device over a full tmpfs) is DEVICE_IO, exit 1, both ends zeroed', async () => {
  // This kernel has no device-mapper (no dm-error/dm-flakey): a loop device whose backing
  // file lives on a 40 MiB tmpfs fails writes past what fits with a kernel I/O error
  // ("critical space allocation error", ENOSPC), at an offset inside the image.
  const mnt = join(dir, `tmpfs-${++n}`)
  await mkdir(mnt)
  await run(['mount', '-t', 'tmpfs', '-o', 'size=40m', 'tmpfs', mnt])
  try {
    const file = join(mnt, 'disk.raw')
    await run(['truncate', '-s', '64M', file])
    const dev = (await run(['losetup', '--find', '--show', file])).stdout.trim()
    try {
      // Fill it beyond the image's span (24 MiB) so that 3 MiB stay free: the two ends the
      // install zeroes first, then 1 MiB of the image, and the next write fails.
      await run(['dd', 'if=/dev/zero', `of=${file}`, 'bs=1M', 'seek=25', 'count=37', 'conv=notrunc', 'status=none'])
      const e = await install({ source: fx.zst, disk: dev, yes: true }).then(
        () => undefined,
        (err: unknown) => err,
      )
      assert.ok(e instanceof HwimageError && e.code === 'DEVICE_IO' && e.exitCode === 1, `DEVICE_IO: ${String(e)}`)
      assert.match((e as Error).message, /Cannot write to .* at byte \d+/)
      assert.match((e as Error).message, /first and last MiB .* are zeroed/)
      const head = Buffer.alloc(MiB)
      const tail = Buffer.alloc(MiB)
      const fh = await import('node:fs/promises').then((f) => f.open(dev, 'r'))
      try {
        await fh.read(head, 0, MiB, 0)
        await fh.read(tail, 0, MiB, 63 * MiB)
      } finally {
        await fh.close()
      }
      assert.ok(head.every((b) => b === 0) && tail.every((b) => b === 0), 'both ends read as zeros')
    } finally {
      await run(['losetup', '--detach', dev])
    }
  } finally {
    await run(['umount', mnt])
  }
})
