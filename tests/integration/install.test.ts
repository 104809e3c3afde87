// The installer on the built image and a real block device: a 20 GiB loop device over a
// sparse file, with non-zero garbage where it matters (the image's whole span and the
// disk's last MiBs), installed with the image's bmap and digest and read back; then the
// disk is checked (sgdisk, both GPT copies, e2fsck, fsck.vfat, boot code). A second
// install without the bmap proves the other half of the zeroing contract (the image span
// zeroed with BLKZEROOUT, data blocks written). That such a disk boots, under OVMF with
// Secure Boot enforced, and that growpart grows root over the whole 20 GiB, is proven by
// first-boot.test.ts on the same kind of garbage-filled disk (one boot serves both).

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { decodeGpt } from '../../src/disk/gpt.js'
import { run } from '../../src/tools/run.js'
import { CLI, testImage } from './fixture.js'
import { partitionNodes } from './partitions.js'

const image = testImage()
const MiB = 1 << 20
const GiB = 1 << 30
const DISK = 20 * GiB

/** Writes non-zero bytes over [offset, offset+length) of a file. */
async function garbage(file: string, offset: number, length: number): Promise<void> {
  const block = Buffer.alloc(8 * MiB)
  for (let i = 0; i < block.length; i++) block[i] = (((i * 167) >> 2) % 251) + 3
  const fh = await open(file, 'r+')
  try {
    for (let at = 0; at < length; at += block.length)
      await fh.write(block, 0, Math.min(block.length, length - at), offset + at)
  } finally {
    await fh.close()
  }
}

async function disk(dir: string): Promise<string> {
  const file = join(dir, 'disk.raw')
  await writeFile(file, '')
  await truncate(file, DISK)
  await garbage(file, 0, image.manifest.image.sizeBytes + 64 * MiB)
  await garbage(file, DISK - 64 * MiB, 64 * MiB)
  return file
}

const losetup = async (...args: string[]): Promise<string> => (await run(['losetup', ...args])).stdout.trim()

async function readAt(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r')
  try {
    const b = Buffer.alloc(length)
    await fh.read(b, 0, length, offset)
    return b
  } finally {
    await fh.close()
  }
}

/** The checks every installed disk must pass, on the loop device and its partitions. */
async function checkInstalled(loop: string, backing: string): Promise<void> {
  assert.match((await run(['sgdisk', '-v', loop])).stdout, /No problems found/)
  const gpt = decodeGpt(await readAt(loop, 0, MiB), await readAt(loop, DISK - MiB, MiB), BigInt(DISK), 512)
  assert.ok(gpt.primaryOk && gpt.backupOk, 'both GPT copies valid')
  assert.deepEqual(gpt.problems, [])
  assert.equal(gpt.gpt.lastUsableLba, BigInt(DISK / 512 - 34), 'usable space reaches the end of the 20 GiB disk')
  assert.deepEqual(await readAt(loop, 0, 440), await readAt(image.img, 0, 440), "GRUB's boot.img is the image's")
  // A second, read-only loop device sees the new table; partx adds its partitions from
  // user space (BLKPG), which also works on kernels built without a GPT parser.
  const parts = await losetup('--find', '--show', '--read-only', backing)
  try {
    const nodes = await partitionNodes(parts, dirname(backing))
    try {
      const root = image.manifest.partitions.find((p) => p.number === 1)
      assert.ok(root, 'the manifest lists partition 1')
      const e2 = await run(['e2fsck', '-fn', nodes.partition(1)], { okStatus: [0, 1, 4, 8] })
      assert.equal(e2.status, 0, `e2fsck -fn: ${e2.stdout}${e2.stderr}`)
      const fat = await run(['fsck.vfat', '-n', nodes.partition(15)], { okStatus: [0, 1] })
      assert.equal(fat.status, 0, `fsck.vfat -n: ${fat.stdout}`)
    } finally {
      await nodes.release()
    }
  } finally {
    await losetup('-d', parts)
  }
}

test('hwimage install puts the built image on a 20 GiB garbage-filled disk: verified, fsck-clean, GPT at the end (first-boot.test.ts boots such a disk)', async () => {
  const dir = await mkdtemp('/var/tmp/hwimage-install-it-')
  const backing = await disk(dir)
  const sums = readFileSync(join(image.dir, 'SHA256SUMS'), 'utf8')
  const zstName = image.zst.split('/').pop()!
  const sha = new RegExp(`^([0-9a-f]{64}) [ *]${zstName.replace(/\./g, '\\.')}$`, 'm').exec(sums)![1]!
  const loop = await losetup('--find', '--show', backing)
  try {
    const r = await run([CLI, 'install', image.zst, '--disk', loop, '--sha256', sha, '--verify', '--yes', '--json'])
    const report = JSON.parse(r.stdout) as {
      mode: string
      ranges: { verified: number }
      bmap: { ranges: number }
      digests: { sourceVerified: boolean }
      readBack: { bytes: number }
      target: { size: number }
    }
    assert.equal(report.mode, 'bmap')
    assert.equal(report.ranges.verified, report.bmap.ranges)
    assert.equal(report.digests.sourceVerified, true)
    assert.ok(report.readBack.bytes >= image.manifest.image.mappedBytes, 'everything written was read back')
    assert.equal(report.target.size, DISK)
    const events = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => (JSON.parse(l) as { event: string }).event)
    assert.equal(events[0], 'start')
    assert.equal(events[events.length - 1], 'done')
    await checkInstalled(loop, backing)
  } finally {
    await losetup('-d', loop)
  }

  await rm(dir, { recursive: true, force: true })
})

test('without a bmap, the image span of a block device is zeroed with BLKZEROOUT and only data is written: the disk still checks clean', async () => {
  const dir = await mkdtemp('/var/tmp/hwimage-install-it-')
  const backing = await disk(dir)
  const loop = await losetup('--find', '--show', backing)
  try {
    const r = await run([CLI, 'install', image.zst, '--disk', loop, '--no-bmap', '--yes', '--json'])
    const report = JSON.parse(r.stdout) as {
      mode: string
      zeroing: Array<{ method: string; length: number }>
      bytes: { written: number; skipped: number }
    }
    assert.equal(report.mode, 'nonzero')
    assert.deepEqual(
      report.zeroing.map((z) => z.method),
      ['explicit', 'explicit', 'zeroout'],
    )
    assert.ok(report.bytes.skipped > 0 && report.bytes.written < image.manifest.image.sizeBytes)
    await checkInstalled(loop, backing)
  } finally {
    await losetup('-d', loop)
    await rm(dir, { recursive: true, force: true })
  }
})
