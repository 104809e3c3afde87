// The installer on the built image and a real block device: a 20 GiB loop device over a
// sparse file, with non-zero garbage where it matters (the image's whole span and the
// disk's last MiBs), installed with the image's bmap and digest and read back; then the
// disk is checked (sgdisk, both GPT copies, e2fsck, fsck.vfat, boot code) and booted
// under OVMF with Secure Boot enforced, where cloud-init's growpart must grow the root
// file system over the whole 20 GiB. A second install without the bmap proves the other
// half of the zeroing contract (the image span zeroed with BLKZEROOUT, data blocks written).

import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { decodeGpt } from '../../src/disk/gpt.js'
import { bootMachine } from '../../src/lab/boot.js'
import { classifyNic, classifyStorage, loadDeviceCatalog } from '../../src/tools/qemu-devices.js'
import { macAddressFor } from '../../src/tools/qemu.js'
import { run } from '../../src/tools/run.js'
import { CLI, testImage } from './fixture.js'

const image = testImage()
const MiB = 1 << 20
const GiB = 1 << 30
const DISK = 20 * GiB

/** Writes non-zero bytes over [offset, offset+length) of a file. */
async function garbage(file: string, offset: number, length: number): Promise<void> {
  const block = Buffer.alloc(8 * MiB)
  for (let i = 0; i < block.length; i++) block[i] = ((i * 167) >> 2) % 251 + 3
  const fh = await open(file, 'r+')
  try {
    for (let at = 0; at < length; at += block.length) await fh.write(block, 0, Math.min(block.length, length - at), offset + at)
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
    // --update: also drops partitions a previous user of this loop device left behind.
    await run(['partx', '--update', parts])
    for (let i = 0; i < 50 && !existsSync(`${parts}p15`); i++) await new Promise((r) => setTimeout(r, 100))
    const root = image.manifest.partitions.find((p) => p.number === 1)
    assert.ok(root, 'the manifest lists partition 1')
    const e2 = await run(['e2fsck', '-fn', `${parts}p1`], { okStatus: [0, 1, 4, 8] })
    assert.equal(e2.status, 0, `e2fsck -fn: ${e2.stdout}${e2.stderr}`)
    const fat = await run(['fsck.vfat', '-n', `${parts}p15`], { okStatus: [0, 1] })
    assert.equal(fat.status, 0, `fsck.vfat -n: ${fat.stdout}`)
  } finally {
    await run(['partx', '--delete', parts], { okStatus: [0, 1] })
    await losetup('-d', parts)
  }
}

async function seedVolume(dir: string, hostname: string): Promise<string> {
  const path = join(dir, 'cidata.img')
  await writeFile(join(dir, 'meta-data'), `instance-id: ${hostname}-${Date.now()}\nlocal-hostname: ${hostname}\n`)
  const runcmd = [['sh', '-c', 'echo "HWIMAGE-READY $(hostname)" > /dev/ttyS0; df -B1 / | sed "s|^|HWIMAGE-DF |" > /dev/ttyS0']]
  await writeFile(join(dir, 'user-data'), `#cloud-config\nruncmd: ${JSON.stringify(runcmd)}\n`)
  await run(['mkfs.vfat', '-n', 'CIDATA', '-C', path, '2048'])
  await run(['mcopy', '-i', path, join(dir, 'meta-data'), join(dir, 'user-data'), '::'])
  return path
}

test('hwimage install puts the built image on a 20 GiB garbage-filled disk: verified, fsck-clean, GPT at the end; it boots with Secure Boot and root fills the disk', async () => {
  const dir = await mkdtemp('/var/tmp/hwimage-install-it-')
  const backing = await disk(dir)
  const sums = readFileSync(join(image.dir, 'SHA256SUMS'), 'utf8')
  const zstName = image.zst.split('/').pop()!
  const sha = new RegExp(`^([0-9a-f]{64}) [ *]${zstName.replace(/\./g, '\\.')}$`, 'm').exec(sums)![1]!
  const loop = await losetup('--find', '--show', backing)
  try {
    const r = await run([CLI, 'install', image.zst, '--disk', loop, '--sha256', sha, '--verify', '--yes', '--json'])
    const report = JSON.parse(r.stdout) as { mode: string; ranges: { verified: number }; bmap: { ranges: number }; digests: { sourceVerified: boolean }; readBack: { bytes: number }; target: { size: number } }
    assert.equal(report.mode, 'bmap')
    assert.equal(report.ranges.verified, report.bmap.ranges)
    assert.equal(report.digests.sourceVerified, true)
    assert.ok(report.readBack.bytes >= image.manifest.image.mappedBytes, 'everything written was read back')
    assert.equal(report.target.size, DISK)
    const events = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { event: string }).event)
    assert.equal(events[0], 'start')
    assert.equal(events[events.length - 1], 'done')
    await checkInstalled(loop, backing)
  } finally {
    await losetup('-d', loop)
  }

  // The installed disk, booted as it is (no copy), with a NoCloud seed on a second disk.
  const catalog = await loadDeviceCatalog()
  const seed = await seedVolume(dir, 'installed-sb-01')
  const log = join(dir, 'serial.log')
  const result = await bootMachine({
    machine: {
      firmware: 'uefi-sb',
      storage: classifyStorage(catalog, 'virtio-blk-pci'),
      nic: classifyNic(catalog, 'virtio-net-pci'),
      disks: [
        { path: backing, format: 'raw', role: 'boot' },
        { path: seed, format: 'raw', role: 'seed' },
      ],
      memoryMiB: 1536,
      cpus: 2,
      macAddress: macAddressFor(11),
      name: 'install-uefi-sb',
    },
    workDir: dir,
    timeoutMs: 10 * 60_000,
    done: (c) => c.has('cloud-init-final') || c.has('panic') || c.has('root-missing') || c.has('no-boot-entry'),
  })
  assert.equal(result.outcome, 'done', `boot ended ${result.outcome}; console: ${log}`)
  assert.equal(result.facts.secureBoot, 'enabled', 'Secure Boot enforced')
  assert.ok(result.console.has('cloud-init-final'), `cloud-init reached its final stage; console: ${log}`)
  assert.equal(result.facts.hostname, 'installed-sb-01')
  assert.ok((result.facts.rootBytes ?? 0) > 19 * GiB, `root grew to fill the 20 GiB disk (got ${result.facts.rootBytes}); console: ${log}`)
  assert.match(await readFile(log, 'utf8'), /HWIMAGE-READY installed-sb-01/)
  await rm(dir, { recursive: true, force: true }) // kept on failure, for its serial.log
})

test('without a bmap, the image span of a block device is zeroed with BLKZEROOUT and only data is written: the disk still checks clean', async () => {
  const dir = await mkdtemp('/var/tmp/hwimage-install-it-')
  const backing = await disk(dir)
  const loop = await losetup('--find', '--show', backing)
  try {
    const r = await run([CLI, 'install', image.zst, '--disk', loop, '--no-bmap', '--yes', '--json'])
    const report = JSON.parse(r.stdout) as { mode: string; zeroing: Array<{ method: string; length: number }>; bytes: { written: number; skipped: number } }
    assert.equal(report.mode, 'nonzero')
    assert.deepEqual(report.zeroing.map((z) => z.method), ['explicit', 'explicit', 'zeroout'])
    assert.ok(report.bytes.skipped > 0 && report.bytes.written < image.manifest.image.sizeBytes)
    await checkInstalled(loop, backing)
  } finally {
    await losetup('-d', loop)
    await rm(dir, { recursive: true, force: true })
  }
})
