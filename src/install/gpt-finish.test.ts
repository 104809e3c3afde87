import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { decodeGpt, encodeGpt, newGpt, type Gpt } from '../disk/gpt.js'
import { GUID_ESP, GUID_LINUX_ROOT_X86_64 } from '../disk/guid.js'
import { InputError } from '../errors.js'
import { run } from '../tools/run.js'
import { patchFirstMiB, resizeForDisk } from './gpt-finish.js'
import { assertSectorSizes, FIRST_MIB, readImageLayout } from './image-layout.js'

const MiB = 1 << 20

function image(sectorSize: 512 | 4096, sizeMiB: number): { gpt: Gpt; head: Uint8Array; bootCode: Uint8Array } {
  const ss = BigInt(sectorSize)
  const base = newGpt({ sectorSize, diskSectors: BigInt(sizeMiB * MiB) / ss })
  const lba = (mib: number): bigint => BigInt(mib * MiB) / ss
  const gpt: Gpt = {
    ...base,
    partitions: [
      {
        number: 1,
        typeGuid: GUID_LINUX_ROOT_X86_64,
        uniqueGuid: '11111111-2222-4333-8444-555555555555',
        firstLba: lba(4),
        lastLba: lba(sizeMiB - 1) - 1n,
        attributes: 0n,
        name: 'root',
      },
      {
        number: 15,
        typeGuid: GUID_ESP,
        uniqueGuid: '11111111-2222-4333-8444-666666666666',
        firstLba: lba(1),
        lastLba: lba(4) - 1n,
        attributes: 0n,
        name: 'esp',
      },
    ],
  }
  const bootCode = new Uint8Array(440).map((_, i) => (i * 13 + 1) & 0xff)
  const head = new Uint8Array(FIRST_MIB)
  const { primary } = encodeGpt(gpt, { bootCode })
  head.set(primary)
  // The disk signature and a byte after the entry array: both must survive the patch.
  head.set([0xde, 0xad, 0xbe, 0xef], 440)
  head[FIRST_MIB - 1] = 0x77
  return { gpt, head, bootCode }
}

test('readImageLayout() finds the GPT, its sector size and the image size it was made for', () => {
  const { head } = image(512, 24)
  const layout = readImageLayout(head)
  assert.equal(layout.sectorSize, 512)
  assert.equal(layout.gptImageSize, 24 * MiB)
  assert.deepEqual(
    layout.gpt!.partitions.map((p) => p.number),
    [1, 15],
  )
  assert.deepEqual(layout.problems, [])
  const four = readImageLayout(image(4096, 24).head)
  assert.equal(four.sectorSize, 4096)
  assert.equal(four.gptImageSize, 24 * MiB)
})

test('readImageLayout() sees no GPT in a head without one, and refuses a damaged primary header', () => {
  assert.deepEqual(readImageLayout(new Uint8Array(FIRST_MIB)), { problems: [] })
  const { head } = image(512, 24)
  head[512 + 40]! ^= 0x01 // FirstUsableLBA, inside the header CRC
  assert.throws(
    () => readImageLayout(head),
    (e: unknown) => e instanceof InputError && e.code === 'FORMAT_GPT',
  )
})

test('assertSectorSizes() refuses a 512-byte image on a 4096-byte disk and the reverse', () => {
  const l512 = readImageLayout(image(512, 24).head)
  assertSectorSizes(l512, 512, '/dev/x')
  assert.throws(
    () => assertSectorSizes(l512, 4096, '/dev/x'),
    (e: unknown) =>
      e instanceof InputError &&
      e.code === 'SECTOR_SIZE_MISMATCH' &&
      /512-byte sectors.*4096-byte logical sectors/.test(e.message),
  )
  assert.throws(
    () => assertSectorSizes(readImageLayout(image(4096, 24).head), 512, '/dev/x'),
    (e: unknown) => e instanceof InputError && e.code === 'SECTOR_SIZE_MISMATCH',
  )
})

test('resizeForDisk() refuses a disk too small for the partitions with TARGET_TOO_SMALL', () => {
  const { gpt } = image(512, 24)
  assert.throws(
    () => resizeForDisk(gpt, 16 * MiB),
    (e: unknown) => e instanceof InputError && e.code === 'TARGET_TOO_SMALL',
  )
})

test('patchFirstMiB() moves the backup to the real end, keeps the boot code and the rest of the MiB, and sgdisk finds no problems', async () => {
  for (const ss of [512, 4096] as const) {
    const { head, gpt } = image(ss, 24)
    const resized = resizeForDisk(readImageLayout(head).gpt!, 64 * MiB)
    const fin = patchFirstMiB(head, resized)
    assert.equal(fin.backupOffset + fin.backup.length, 64 * MiB)
    assert.deepEqual(fin.firstMiB.subarray(0, 446), head.subarray(0, 446))
    assert.equal(fin.firstMiB[FIRST_MIB - 1], 0x77)
    assert.equal(fin.gpt.partitions.length, gpt.partitions.length)
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-gpt-'))
    try {
      const disk = path.join(dir, 'disk.raw')
      const fh = await fsp.open(disk, 'w')
      await fh.truncate(64 * MiB)
      await fh.write(fin.firstMiB, 0, fin.firstMiB.length, 0)
      await fh.write(fin.backup, 0, fin.backup.length, fin.backupOffset)
      await fh.close()
      if (ss === 512) {
        const v = await run(['sgdisk', '-v', disk])
        assert.match(v.stdout, /No problems found/)
        const sf = JSON.parse((await run(['sfdisk', '--json', disk])).stdout) as { partitiontable: { lastlba: number } }
        assert.equal(sf.partitiontable.lastlba, 64 * 2048 - 34)
      } else {
        // No reference tool here reads a 4Kn GPT from a file: our decoder checks both copies.
        const tail = new Uint8Array(FIRST_MIB)
        tail.set(fin.backup, FIRST_MIB - fin.backup.length)
        const d = decodeGpt(fin.firstMiB, tail, BigInt(64 * MiB), 4096)
        assert.ok(d.primaryOk && d.backupOk)
        assert.deepEqual(d.problems, [])
        assert.equal(d.gpt.lastUsableLba, BigInt((64 * MiB) / 4096 - 6))
      }
    } finally {
      await fsp.rm(dir, { recursive: true, force: true })
    }
  }
})
