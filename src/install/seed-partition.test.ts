import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, test } from 'node:test'
import { spawnCli } from '../cli/cli.fixture.js'
import { newGpt, validateGpt, type Gpt, type GptPartition } from '../disk/gpt.js'
import { GUID_BIOS_BOOT, GUID_ESP, GUID_LINUX_ROOT_X86_64, GUID_MS_BASIC_DATA } from '../disk/guid.js'
import { HwimageError } from '../errors.js'
import { run } from '../tools/run.js'
import { makeFixtureImage, type FixtureImage } from './image.fixture.js'
import { readBytes } from './install.fixture.js'
import { addSeedPartition, rootPartitionOffset } from './seed-partition.js'

const MiB = 1 << 20
const GiB = 1 << 30

function part(
  number: number,
  typeGuid: string,
  firstByte: number,
  bytes: number,
  ss: number,
  name: string,
): GptPartition {
  return {
    number,
    typeGuid,
    uniqueGuid: `00000000-0000-4000-8000-00000000000${number % 10}`,
    firstLba: BigInt(firstByte / ss),
    lastLba: BigInt((firstByte + bytes) / ss - 1),
    attributes: 0n,
    name,
  }
}

/** A table like the built image's (root 1 last, bios 14, esp 15) on a disk of `diskBytes`. */
function imageTable(diskBytes: number, ss = 512, rootEnd = 2 * GiB): Gpt {
  const gpt = newGpt({ sectorSize: ss, diskSectors: BigInt(diskBytes / ss) })
  return {
    ...gpt,
    partitions: [
      part(1, GUID_LINUX_ROOT_X86_64, 128 * MiB, rootEnd - 128 * MiB, ss, 'root'),
      part(14, GUID_BIOS_BOOT, MiB, 3 * MiB, ss, 'bios'),
      part(15, GUID_ESP, 4 * MiB, 124 * MiB, ss, 'esp'),
    ],
  }
}

const code = (c: string) => (e: unknown) => e instanceof HwimageError && e.code === c

test('the seed partition goes last: 16 MiB named cidata, Microsoft basic data, ending on the last MiB boundary before the backup GPT', () => {
  const disk = 20 * GiB
  const { gpt, partition, offset, sizeBytes } = addSeedPartition(imageTable(disk), {
    uniqueGuid: '11111111-2222-4333-8444-555555555555',
  })
  assert.equal(sizeBytes, 16 * MiB)
  assert.equal(offset, disk - 17 * MiB)
  assert.equal(partition.firstLba, BigInt(offset / 512))
  assert.equal(partition.lastLba, BigInt((disk - MiB) / 512 - 1))
  assert.equal(partition.name, 'cidata')
  assert.equal(partition.typeGuid, GUID_MS_BASIC_DATA)
  assert.equal(partition.number, 16, "one past the highest slot, as the contract's /dev/sda16")
  assert.equal(partition.uniqueGuid, '11111111-2222-4333-8444-555555555555')
  assert.deepEqual(
    gpt.partitions.map((p) => p.number),
    [1, 14, 15, 16],
  )
  assert.ok(partition.lastLba <= gpt.lastUsableLba)
  assert.deepEqual(validateGpt(gpt), [], 'aligned, no overlap, in range')
})

test('on a disk with 4096-byte sectors the partition is still 16 MiB and 1 MiB aligned, counted in 4 KiB LBAs', () => {
  const disk = 8 * GiB
  const { partition, offset } = addSeedPartition(imageTable(disk, 4096))
  assert.equal(offset % MiB, 0)
  assert.equal(partition.firstLba, BigInt(offset / 4096))
  assert.equal((partition.lastLba - partition.firstLba + 1n) * 4096n, BigInt(16 * MiB))
  assert.equal(offset, disk - 17 * MiB)
})

test('a disk whose size is not a MiB multiple still gets a partition that starts and ends on MiB boundaries', () => {
  const disk = 20 * GiB + 3 * 512 + 700 * 1024
  const gpt = imageTable(Math.floor(disk / 512) * 512)
  const { partition } = addSeedPartition(gpt)
  assert.equal((partition.firstLba * 512n) % BigInt(MiB), 0n)
  assert.equal(((partition.lastLba + 1n) * 512n) % BigInt(MiB), 0n)
  assert.ok(partition.lastLba <= gpt.lastUsableLba)
})

test('a disk with no 16 MiB left after the image is refused with TARGET_TOO_SMALL', () => {
  // Root ends 10 MiB before the disk's end: only ~9 MiB free before the backup GPT.
  assert.throws(() => addSeedPartition(imageTable(2 * GiB + 10 * MiB)), code('TARGET_TOO_SMALL'))
  // Exactly enough: root ends at 2 GiB, the seed partition needs 16 MiB plus the last MiB for the backup GPT.
  assert.equal(addSeedPartition(imageTable(2 * GiB + 17 * MiB)).offset, 2 * GiB)
})

test('when the highest slot is the last entry, the lowest free slot is used', () => {
  const gpt = imageTable(4 * GiB)
  const full = { ...gpt, partitions: [...gpt.partitions, part(128, GUID_ESP, 2 * GiB, MiB, 512, 'x')] }
  assert.equal(addSeedPartition(full).partition.number, 2)
})

test("the root offset is the x86-64 root partition's start", () => {
  assert.equal(rootPartitionOffset(imageTable(4 * GiB)), 128 * MiB)
})

// The CLI end to end on a file: install --seed, then read the disk back with Debian's tools.
let dir: string
let fx: FixtureImage
before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-seed-part-'))
  fx = await makeFixtureImage(dir, { formats: ['zst'] })
})
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true })
})

test('hwimage install --seed onto a sparse file: cidata partition last, a clean FAT labelled CIDATA with 512-byte sectors, the seed files and hwimage.json with the install', async () => {
  const disk = path.join(dir, 'disk.raw')
  await fsp.writeFile(disk, '')
  await fsp.truncate(disk, 256 * MiB)
  const seed = path.join(dir, 'seed.yaml')
  await fsp.writeFile(
    seed,
    'hostname: file-01\ninstance_id: file-test-1\nuser_data:\n  runcmd: [[touch, /root/hello]]\n',
  )
  const r = await hwimage(['install', fx.zst, '--disk', disk, '--seed', seed, '--json'])
  assert.equal(r.status, 0, r.stderr)
  const seedEvent = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((e) => e.event === 'seed')
  assert.equal(seedEvent?.instanceId, 'file-test-1')

  const table = (
    JSON.parse((await run(['sfdisk', '--json', disk])).stdout) as {
      partitiontable: { partitions: { start: number; size: number; type: string; name?: string }[] }
    }
  ).partitiontable
  const last = [...table.partitions].sort((a, b) => b.start - a.start)[0]!
  assert.equal(last.name, 'cidata')
  assert.equal(last.type.toUpperCase(), GUID_MS_BASIC_DATA)
  assert.equal(last.start * 512, 256 * MiB - 17 * MiB)
  assert.equal(last.size * 512, 16 * MiB)
  assert.match((await run(['sgdisk', '-v', disk])).stdout, /No problems found/)

  const vol = path.join(dir, 'cidata.part')
  await fsp.writeFile(vol, await readBytes(disk, last.start * 512, last.size * 512))
  const fsck = await run(['fsck.vfat', '-n', vol], { okStatus: [0, 1] })
  assert.equal(fsck.status, 0, fsck.stdout)
  const boot = await readBytes(vol, 0, 512)
  assert.equal(boot.readUInt16LE(11), 512, 'bytes per sector')
  const listing = (await run(['mdir', '-i', vol, '::'], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } })).stdout
  assert.match(listing, /Volume in drive : is CIDATA/)
  for (const name of ['meta-data', 'user-data', 'hwimage.json'])
    assert.match(listing, new RegExp(` ${name.replace('.', '\\.')}$`, 'm'), listing)
  const manifest = JSON.parse((await run(['mtype', '-i', vol, '::hwimage.json'])).stdout) as {
    install?: {
      image?: { sha256?: string; name?: string }
      target?: { path?: string; logicalSectorSize?: number }
      time?: string
    }
  }
  const sums = await fsp.readFile(fx.sums, 'utf8')
  assert.ok(
    manifest.install?.image?.sha256 && sums.includes(`${manifest.install.image.sha256}  ${path.basename(fx.zst)}`),
    `the image digest is the .zst's: ${JSON.stringify(manifest.install)}`,
  )
  assert.equal(manifest.install?.target?.path, disk)
  assert.equal(manifest.install?.target?.logicalSectorSize, 512)
  assert.ok(!Number.isNaN(Date.parse(manifest.install?.time ?? '')))
})

test('hwimage install --seed-format configdrive writes a config-2 volume; a bad --seed-format is a usage error', async () => {
  const disk = path.join(dir, 'disk-cd.raw')
  await fsp.writeFile(disk, '')
  await fsp.truncate(disk, 128 * MiB)
  const seed = path.join(dir, 'seed-cd.yaml')
  await fsp.writeFile(seed, 'hostname: file-02\n')
  const r = await hwimage(['install', fx.zst, '--disk', disk, '--seed', seed, '--seed-format', 'configdrive', '--json'])
  assert.equal(r.status, 0, r.stderr)
  const seedEvent = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((e) => e.event === 'seed')
  assert.equal(seedEvent?.label, 'config-2')
  const bad = await hwimage(['install', fx.zst, '--disk', disk, '--seed', seed, '--seed-format', 'iso'])
  assert.equal(bad.status, 2)
  assert.match(bad.stderr, /--seed-format "iso"/)
})

/** Runs `hwimage ARGS` from the sources to its end. */
function hwimage(args: string[]) {
  return spawnCli(args).done
}
