import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, readFile, open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { decodeMbr, encodeProtectiveMbr, MBR_BOOT_CODE_SIZE, MBR_SIZE } from './mbr.js'
import { FormatError } from '../errors.js'
import { run } from '../tools/run.js'

const isMbrError = (e: unknown): boolean => e instanceof FormatError && e.code === 'FORMAT_MBR'

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-mbr-'))
  try {
    return await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function makeFile(path: string, bytes: number): Promise<void> {
  const fh = await open(path, 'w')
  await fh.truncate(bytes)
  await fh.close()
}

test('encodeProtectiveMbr() writes one 0xEE partition from LBA 1 to the last sector', () => {
  const m = decodeMbr(encodeProtectiveMbr(131072n))
  assert.equal(m.protective, true)
  assert.equal(m.hybrid, false)
  assert.deepEqual(m.partitions, [{ number: 1, bootable: false, type: 0xee, firstLba: 1n, sectors: 131071n }])
})

test('encodeProtectiveMbr() caps SizeInLBA at 0xFFFFFFFF for disks over 2 TiB of sectors', () => {
  const m = decodeMbr(encodeProtectiveMbr(1n << 40n))
  assert.equal(m.partitions[0]!.sectors, 0xffff_ffffn)
  const exact = decodeMbr(encodeProtectiveMbr(0x1_0000_0000n))
  assert.equal(exact.partitions[0]!.sectors, 0xffff_ffffn)
})

test('encodeProtectiveMbr() writes StartingCHS 0x000200 and FF FF FF as EndingCHS past cylinder 1023', () => {
  const b = encodeProtectiveMbr(1n << 30n)
  assert.deepEqual([...b.subarray(447, 450)], [0x00, 0x02, 0x00])
  assert.deepEqual([...b.subarray(451, 454)], [0xff, 0xff, 0xff])
  assert.deepEqual([...b.subarray(510, 512)], [0x55, 0xaa])
})

test('encodeProtectiveMbr() keeps the first 440 bytes of boot code and nothing past them', () => {
  const boot = new Uint8Array(512).fill(0xab)
  const b = encodeProtectiveMbr(4096n, boot)
  assert.equal(b.length, MBR_SIZE)
  assert.ok(b.subarray(0, MBR_BOOT_CODE_SIZE).every((x) => x === 0xab))
  assert.ok(b.subarray(MBR_BOOT_CODE_SIZE, 446).every((x) => x === 0))
  const m = decodeMbr(b)
  assert.deepEqual(m.bootCode, boot.subarray(0, MBR_BOOT_CODE_SIZE))
  assert.equal(m.protective, true)
})

test('encodeProtectiveMbr() rejects a disk of fewer than 2 sectors', () => {
  assert.throws(() => encodeProtectiveMbr(1n), isMbrError)
})

test('encodeProtectiveMbr() writes the same partition record as sgdisk for a 64 MiB disk', async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'disk.img')
    await makeFile(img, 64 << 20)
    await run(['sgdisk', '-o', img])
    const theirs = (await readFile(img)).subarray(0, MBR_SIZE)
    const ours = encodeProtectiveMbr(131072n)
    assert.deepEqual(ours.subarray(446, 512), new Uint8Array(theirs.subarray(446, 512)))
  })
})

test('decodeMbr() reads a DOS table that sfdisk writes, with the bootable flag and disk identifier', async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'disk.img')
    await makeFile(img, 32 << 20)
    await run(['sfdisk', '--no-reread', '--no-tell-kernel', img], {
      input:
        'label: dos\nlabel-id: 0x12345678\nstart=2048, size=8192, type=83, bootable\nstart=10240, size=4096, type=ef\n',
    })
    const m = decodeMbr(await readFile(img))
    assert.equal(m.diskSignature, 0x12345678)
    assert.equal(m.protective, false)
    assert.equal(m.hybrid, false)
    assert.deepEqual(m.partitions, [
      { number: 1, bootable: true, type: 0x83, firstLba: 2048n, sectors: 8192n },
      { number: 2, bootable: false, type: 0xef, firstLba: 10240n, sectors: 4096n },
    ])
  })
})

test('decodeMbr() reports a hybrid MBR as hybrid and not protective', () => {
  const b = encodeProtectiveMbr(100000n)
  const r2 = 446 + 16
  b[r2 + 4] = 0x0c
  new DataView(b.buffer).setUint32(r2 + 8, 2048, true)
  new DataView(b.buffer).setUint32(r2 + 12, 2048, true)
  const m = decodeMbr(b)
  assert.equal(m.protective, false)
  assert.equal(m.hybrid, true)
})

test('decodeMbr() does not count a 0xEE partition that starts past LBA 1 as protective', () => {
  const b = encodeProtectiveMbr(100000n)
  new DataView(b.buffer).setUint32(446 + 8, 2, true)
  assert.equal(decodeMbr(b).protective, false)
})

test('decodeMbr() rejects fewer than 512 bytes naming expected and actual length', () => {
  assert.throws(
    () => decodeMbr(new Uint8Array(511)),
    (e: unknown) => isMbrError(e) && /expected at least 512 bytes, got 511/.test((e as Error).message),
  )
})

test('decodeMbr() rejects a missing 55 AA signature naming expected and actual', () => {
  const b = encodeProtectiveMbr(100000n)
  b[511] = 0
  assert.throws(
    () => decodeMbr(b),
    (e: unknown) => isMbrError(e) && /expected signature 0xAA55, got 0x0055/.test((e as Error).message),
  )
})

test('decodeMbr() rejects a boot indicator other than 0x00 and 0x80', () => {
  const b = encodeProtectiveMbr(100000n)
  b[446 + 16 * 2] = 0x01
  assert.throws(
    () => decodeMbr(b),
    (e: unknown) => isMbrError(e) && /partition 3, got 0x01/.test((e as Error).message),
  )
})

test('decodeMbr() throws only FormatError on arbitrary bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), fc.boolean(), (b, sign) => {
      if (sign && b.length >= 512) {
        b[510] = 0x55
        b[511] = 0xaa
      }
      try {
        decodeMbr(b)
      } catch (e) {
        return isMbrError(e)
      }
      return true
    }),
    { numRuns: 500 },
  )
})

test('decodeMbr() does not share memory with its input', () => {
  const b = encodeProtectiveMbr(100000n, new Uint8Array(440).fill(7))
  const m = decodeMbr(b)
  b[0] = 9
  assert.equal(m.bootCode[0], 7)
})
