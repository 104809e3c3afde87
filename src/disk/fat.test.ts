import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { FormatError } from '../errors.js'
import { mkfsFat } from '../tools/mkfs.js'
import { decodeFatBootSector, fatBitsFor } from './fat.js'

const MiB = 1 << 20
let dir: string
let n = 0
before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-fat-'))
})
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true })
})

/** A FAT made by mkfs.vfat; returns its first 4 KiB. */
async function made(
  sizeBytes: number,
  o: { sectorSize?: number; fatBits?: 12 | 16 | 32; label?: string; s1?: boolean },
) {
  const image = path.join(dir, `v${++n}.img`)
  await fsp.writeFile(image, new Uint8Array(0))
  await fsp.truncate(image, sizeBytes)
  await mkfsFat({
    image,
    offsetBytes: 0,
    sizeBytes,
    label: o.label ?? 'ESP',
    volumeId: '1A2B3C4D',
    ...(o.sectorSize ? { sectorSize: o.sectorSize } : {}),
    ...(o.fatBits ? { fatBits: o.fatBits } : {}),
    ...(o.s1 ? { sectorsPerCluster: 1 } : {}),
  })
  const fh = await fsp.open(image, 'r')
  const b = new Uint8Array(4096)
  await fh.read(b, 0, b.length, 0)
  await fh.close()
  return b
}

test("decodeFatBootSector() reads mkfs.vfat's geometry, volume id and label, at 512 and 4096 bytes per sector", async () => {
  const a = decodeFatBootSector(await made(100 * MiB, { fatBits: 32 }))
  assert.deepEqual(
    { ...a },
    {
      bytesPerSector: 512,
      sectorsPerCluster: 1,
      totalSectors: 204800,
      clusters: a.clusters,
      fatBits: 32,
      volumeId: '1A2B3C4D',
      label: 'ESP',
    },
  )
  assert.ok(a.clusters >= 65525)
  const b = decodeFatBootSector(await made(100 * MiB, { sectorSize: 4096, fatBits: 16, s1: true, label: 'EFI' }))
  assert.equal(b.bytesPerSector, 4096)
  assert.equal(b.totalSectors, 25600)
  assert.equal(b.fatBits, 16)
  assert.equal(b.label, 'EFI')
  assert.equal(b.volumeId, '1A2B3C4D')
})

test('decodeFatBootSector() types a FAT by its cluster count: a FAT32 layout with too few clusters is FAT16', async () => {
  // mkfs.vfat warns and makes it anyway: 25600 clusters of 4 KiB.
  const b = decodeFatBootSector(await made(100 * MiB, { sectorSize: 4096, fatBits: 32, s1: true }))
  assert.equal(b.fatBits, 16)
  assert.equal(b.volumeId, '1A2B3C4D', 'the id is read from the FAT32 extended boot record')
  assert.equal(b.label, 'ESP')
})

test('fatBitsFor() picks the type mkfs.vfat makes with one 4 KiB sector per cluster', async () => {
  for (const [mib, bits] of [
    [8, 12],
    [100, 16],
    [300, 32],
  ] as const) {
    assert.equal(fatBitsFor(mib * MiB, 4096), bits, `${mib} MiB`)
    const got = decodeFatBootSector(await made(mib * MiB, { sectorSize: 4096, fatBits: bits, s1: true }))
    assert.equal(got.fatBits, bits, `${mib} MiB as made`)
  }
  assert.equal(fatBitsFor(100 * MiB, 512), 32)
})

test('decodeFatBootSector() rejects a short sector, a missing signature and a bad sector size with FORMAT_FAT', async () => {
  const good = await made(8 * MiB, {})
  const isFat = (re: RegExp) => (e: unknown) =>
    e instanceof FormatError && e.code === 'FORMAT_FAT' && re.test(e.message)
  assert.throws(() => decodeFatBootSector(good.subarray(0, 100)), isFat(/at least 512 bytes/))
  const sig = new Uint8Array(good)
  sig[510] = 0
  assert.throws(() => decodeFatBootSector(sig), isFat(/signature 0xAA55/))
  const ss = new Uint8Array(good)
  ss[11] = 0x33
  assert.throws(() => decodeFatBootSector(ss), isFat(/bytes per sector/))
  const clus = new Uint8Array(good)
  clus[13] = 3
  assert.throws(() => decodeFatBootSector(clus), isFat(/power of two/))
})
