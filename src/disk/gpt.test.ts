import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  decodeGpt,
  decodeGptHeader,
  decodePartitionEntries,
  encodeGpt,
  encodeGptHeader,
  encodePartitionEntries,
  entryArraySectors,
  newGpt,
  resizeGpt,
  validateGpt,
  type Gpt,
  type GptHeader,
  type GptPartition,
} from './gpt.js'
import { GUID_BIOS_BOOT, GUID_ESP, GUID_LINUX_ROOT_X86_64, GUID_MS_BASIC_DATA, formatGuid } from './guid.js'
import { decodeMbr } from './mbr.js'
import { crc32 } from './crc32.js'
import { FormatError } from '../errors.js'

const MiB = 1n << 20n
/** XORs one byte in place. */
const flip = (b: Uint8Array, i: number, x: number): void => {
  b[i] = (b[i] ?? 0) ^ x
}
const isGptError = (e: unknown): boolean => e instanceof FormatError && e.code === 'FORMAT_GPT'

/** The design's default layout (BIOS boot 14, ESP 15, root 1 to the end), with a small ESP so it fits 64 MiB. */
export function sampleGpt(sectorSize = 512, diskBytes = 64n * MiB): Gpt {
  const ss = BigInt(sectorSize)
  const g = newGpt({ sectorSize, diskSectors: diskBytes / ss, diskGuid: '11111111-2222-3333-4444-555555555555' })
  const lba = (bytes: bigint): bigint => bytes / ss
  const partitions: GptPartition[] = [
    {
      number: 1,
      typeGuid: GUID_LINUX_ROOT_X86_64,
      uniqueGuid: 'AAAAAAAA-0000-4000-8000-000000000001',
      firstLba: lba(21n * MiB),
      lastLba: g.lastUsableLba,
      attributes: 0n,
      name: 'root',
    },
    {
      number: 14,
      typeGuid: GUID_BIOS_BOOT,
      uniqueGuid: 'AAAAAAAA-0000-4000-8000-00000000000E',
      firstLba: lba(MiB),
      lastLba: lba(5n * MiB) - 1n,
      attributes: 0n,
      name: 'bios',
    },
    {
      number: 15,
      typeGuid: GUID_ESP,
      uniqueGuid: 'AAAAAAAA-0000-4000-8000-00000000000F',
      firstLba: lba(5n * MiB),
      lastLba: lba(21n * MiB) - 1n,
      attributes: 1n << 2n,
      name: 'ESP',
    },
  ]
  return { ...g, partitions }
}

/** The first `headSectors` and last `tailSectors` sectors of a disk holding `gpt`, as a reader would get them. */
export function diskWindows(
  gpt: Gpt,
  bootCode?: Uint8Array,
): { head: Uint8Array; tail: Uint8Array; diskBytes: bigint } {
  const { primary, backup, backupOffset } = encodeGpt(gpt, { bootCode })
  const diskBytes = gpt.diskSectors * BigInt(gpt.sectorSize)
  assert.equal(backupOffset + BigInt(backup.length), diskBytes)
  return { head: primary, tail: backup, diskBytes }
}

const sorted = (g: Gpt): Gpt => ({ ...g, partitions: [...g.partitions].sort((a, b) => a.number - b.number) })

// ---- headers ----

function sampleHeader(): Omit<GptHeader, 'headerCrc32'> {
  return {
    revision: 0x0001_0000,
    headerSize: 92,
    myLba: 1n,
    alternateLba: 131071n,
    firstUsableLba: 34n,
    lastUsableLba: 131038n,
    diskGuid: '11111111-2222-3333-4444-555555555555',
    partitionEntryLba: 2n,
    numberOfPartitionEntries: 128,
    sizeOfPartitionEntry: 128,
    partitionEntryArrayCrc32: 0x1234_5678,
  }
}

test('encodeGptHeader() writes "EFI PART", revision 1.0, size 92 and a CRC that decodeGptHeader() accepts', () => {
  const b = encodeGptHeader(sampleHeader(), 512)
  assert.equal(b.length, 512)
  assert.equal(Buffer.from(b.subarray(0, 8)).toString('latin1'), 'EFI PART')
  const h = decodeGptHeader(b)
  const { headerCrc32, ...rest } = h
  assert.deepEqual(rest, sampleHeader())
  const zeroed = new Uint8Array(b.subarray(0, 92))
  zeroed.fill(0, 16, 20)
  assert.equal(headerCrc32, crc32(zeroed))
})

test('encodeGptHeader() fills a 4096-byte sector and leaves the reserved bytes zero', () => {
  const b = encodeGptHeader(sampleHeader(), 4096)
  assert.equal(b.length, 4096)
  assert.ok(b.subarray(92).every((x) => x === 0))
  assert.ok(b.subarray(20, 24).every((x) => x === 0))
})

test('decodeGptHeader() rejects a header whose CRC does not match, naming expected and actual', () => {
  const b = encodeGptHeader(sampleHeader(), 512)
  flip(b, 60, 1) // inside DiskGUID: only the CRC can notice
  assert.throws(
    () => decodeGptHeader(b),
    (e: unknown) => isGptError(e) && /expected HeaderCRC32 0x[0-9A-F]{8}, got 0x[0-9A-F]{8}/.test((e as Error).message),
  )
})

test('decodeGptHeader() rejects a sector shorter than 92 bytes', () => {
  assert.throws(
    () => decodeGptHeader(new Uint8Array(91)),
    (e: unknown) => isGptError(e) && /expected at least 92 bytes, got 91/.test((e as Error).message),
  )
})

test('decodeGptHeader() rejects a wrong signature, quoting what it found', () => {
  const b = encodeGptHeader(sampleHeader(), 512)
  b[0] = 0x58
  assert.throws(
    () => decodeGptHeader(b),
    (e: unknown) => isGptError(e) && /expected signature "EFI PART", got "XFI PART"/.test((e as Error).message),
  )
})

/** Sets a header field and recomputes the CRC so that only the range check can fail. */
function withField(mutate: (v: DataView) => void): Uint8Array {
  const b = encodeGptHeader(sampleHeader(), 512)
  const v = new DataView(b.buffer)
  mutate(v)
  v.setUint32(16, 0, true)
  v.setUint32(16, crc32(b.subarray(0, v.getUint32(12, true) <= 512 ? v.getUint32(12, true) : 92)), true)
  return b
}

test('decodeGptHeader() rejects a header claiming 2^32-1 entries without allocating them', () => {
  const b = withField((v) => v.setUint32(80, 0xffff_ffff, true))
  assert.throws(
    () => decodeGptHeader(b),
    (e: unknown) => isGptError(e) && /4294967295 × 128/.test((e as Error).message),
  )
})

test('decodeGptHeader() rejects out-of-range fields with a FormatError naming the field', () => {
  const cases: [string, (v: DataView) => void, RegExp][] = [
    ['revision 2.0', (v) => v.setUint32(8, 0x0002_0000, true), /expected revision 1\.x/],
    ['HeaderSize 91', (v) => v.setUint32(12, 91, true), /expected HeaderSize from 92 to 512, got 91/],
    ['HeaderSize 513', (v) => v.setUint32(12, 513, true), /got 513/],
    ['entry size 100', (v) => v.setUint32(84, 100, true), /SizeOfPartitionEntry 128 × 2\^n, got 100/],
    ['entry size 384', (v) => v.setUint32(84, 384, true), /got 384/],
    ['entry size 0', (v) => v.setUint32(84, 0, true), /got 0/],
    ['zero entries', (v) => v.setUint32(80, 0, true), /got 0 × 128/],
    ['MyLBA 0', (v) => v.setBigUint64(24, 0n, true), /MyLBA and AlternateLBA/],
    ['MyLBA = AlternateLBA', (v) => v.setBigUint64(32, 1n, true), /MyLBA and AlternateLBA/],
    ['first > last usable', (v) => v.setBigUint64(40, 200000n, true), /FirstUsableLBA ≤ LastUsableLBA/],
    ['MyLBA inside usable', (v) => v.setBigUint64(24, 100n, true), /outside the usable LBAs/],
    ['array inside usable', (v) => v.setBigUint64(72, 40n, true), /PartitionEntryLBA/],
    ['array over the header', (v) => v.setBigUint64(72, 1n, true), /PartitionEntryLBA/],
    ['array past FirstUsableLBA', (v) => v.setBigUint64(72, 3n, true), /PartitionEntryLBA/],
  ]
  for (const [what, mutate, re] of cases) {
    assert.throws(
      () => decodeGptHeader(withField(mutate)),
      (e: unknown) => isGptError(e) && re.test((e as Error).message),
      what,
    )
  }
})

test('decodeGptHeader() accepts a larger HeaderSize, a minor revision and 256-byte entries', () => {
  const h = decodeGptHeader(
    withField((v) => {
      v.setUint32(12, 120, true)
      v.setUint32(8, 0x0001_0002, true)
      v.setUint32(84, 256, true)
      v.setUint32(80, 64, true)
    }),
  )
  assert.equal(h.headerSize, 120)
  assert.equal(h.revision, 0x0001_0002)
  assert.equal(h.sizeOfPartitionEntry, 256)
})

test('decodeGptHeader() rejects every single-byte change in the 92 bytes the CRC covers', () => {
  const good = encodeGptHeader(sampleHeader(), 512)
  for (let i = 0; i < 92; i++) {
    if (i >= 20 && i < 24) continue // Reserved: changes must still be caught by the CRC, checked below
    for (const x of [0x01, 0x80, 0xff]) {
      const b = new Uint8Array(good)
      flip(b, i, x)
      assert.throws(() => decodeGptHeader(b), isGptError, `byte ${i} ^ 0x${x.toString(16)}`)
    }
  }
  const r = new Uint8Array(good)
  r[21] = 7
  assert.throws(() => decodeGptHeader(r), isGptError)
})

test('decodeGptHeader() throws only FormatError on random bytes, with or without a valid signature and CRC', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), fc.integer({ min: 0, max: 2 }), (b, mode) => {
      if (mode >= 1 && b.length >= 92) b.set(Buffer.from('EFI PART'), 0)
      if (mode === 2 && b.length >= 92) {
        const v = new DataView(b.buffer, b.byteOffset, b.length)
        const size = v.getUint32(12, true)
        v.setUint32(16, 0, true)
        v.setUint32(16, crc32(b.subarray(0, size <= b.length ? size : 92)), true)
      }
      try {
        decodeGptHeader(b)
      } catch (e) {
        return isGptError(e)
      }
      return true
    }),
    { numRuns: 2000 },
  )
})

// ---- partition entries ----

test('encodePartitionEntries() puts each partition in its slot and decodePartitionEntries() reads it back', () => {
  const g = sampleGpt(512, 256n * MiB)
  const bytes = encodePartitionEntries(g.partitions, 128)
  assert.equal(bytes.length, 128 * 128)
  assert.equal(formatGuid(bytes.subarray(13 * 128, 13 * 128 + 16)), GUID_BIOS_BOOT)
  const h = { ...sampleHeader(), headerCrc32: 0, partitionEntryArrayCrc32: crc32(bytes) }
  assert.deepEqual(decodePartitionEntries(bytes, h), sorted(g).partitions)
})

test('encodePartitionEntries() writes names as UTF-16LE, including characters outside the BMP', () => {
  const name = 'Système 😀 ε'
  const bytes = encodePartitionEntries(
    [{ number: 1, typeGuid: GUID_ESP, uniqueGuid: GUID_ESP, firstLba: 34n, lastLba: 34n, attributes: 0n, name }],
    1,
  )
  assert.deepEqual(bytes.subarray(56, 56 + name.length * 2), new Uint8Array(Buffer.from(name, 'utf16le')))
  assert.equal(bytes[56 + name.length * 2], 0)
})

test('encodePartitionEntries() rejects names over 36 code units, duplicate or out-of-range slots and empty types', () => {
  const p: GptPartition = {
    number: 1,
    typeGuid: GUID_ESP,
    uniqueGuid: GUID_ESP,
    firstLba: 34n,
    lastLba: 40n,
    attributes: 0n,
    name: '',
  }
  assert.throws(() => encodePartitionEntries([{ ...p, name: 'x'.repeat(37) }], 128), isGptError)
  assert.throws(() => encodePartitionEntries([{ ...p, name: '😀'.repeat(19) }], 128), isGptError)
  assert.throws(() => encodePartitionEntries([{ ...p, name: 'a\0b' }], 128), isGptError)
  assert.throws(
    () => encodePartitionEntries([p, p], 128),
    (e: unknown) => isGptError(e) && /got 1 twice/.test((e as Error).message),
  )
  assert.throws(() => encodePartitionEntries([{ ...p, number: 129 }], 128), isGptError)
  assert.throws(() => encodePartitionEntries([{ ...p, number: 0 }], 128), isGptError)
  assert.throws(
    () => encodePartitionEntries([{ ...p, typeGuid: '00000000-0000-0000-0000-000000000000' }], 128),
    isGptError,
  )
  assert.throws(() => encodePartitionEntries([{ ...p, lastLba: 33n }], 128), isGptError)
  assert.throws(() => encodePartitionEntries([{ ...p, attributes: 1n << 64n }], 128), isGptError)
  assert.throws(() => encodePartitionEntries([p], 128, 100), isGptError)
  assert.throws(() => encodePartitionEntries([p], 0), isGptError)
  assert.equal(encodePartitionEntries([{ ...p, name: 'x'.repeat(36) }], 128).length, 16384)
})

test('decodePartitionEntries() reads 256-byte entries', () => {
  const p: GptPartition = {
    number: 3,
    typeGuid: GUID_ESP,
    uniqueGuid: GUID_MS_BASIC_DATA,
    firstLba: 34n,
    lastLba: 40n,
    attributes: 5n,
    name: 'wide',
  }
  const bytes = encodePartitionEntries([p], 64, 256)
  const h = {
    ...sampleHeader(),
    headerCrc32: 0,
    sizeOfPartitionEntry: 256,
    numberOfPartitionEntries: 64,
    partitionEntryArrayCrc32: crc32(bytes),
  }
  assert.deepEqual(decodePartitionEntries(bytes, h), [p])
})

test('decodePartitionEntries() rejects a short array and a wrong array CRC, naming expected and actual', () => {
  const bytes = encodePartitionEntries(sampleGpt().partitions, 128)
  const h = { ...sampleHeader(), headerCrc32: 0, partitionEntryArrayCrc32: crc32(bytes) }
  assert.throws(
    () => decodePartitionEntries(bytes.subarray(0, 16383), h),
    (e: unknown) => isGptError(e) && /expected at least 16384 bytes, got 16383/.test((e as Error).message),
  )
  const bad = new Uint8Array(bytes)
  bad[16000] = 1
  assert.throws(
    () => decodePartitionEntries(bad, h),
    (e: unknown) =>
      isGptError(e) && /expected PartitionEntryArrayCRC32 0x[0-9A-F]{8}, got 0x[0-9A-F]{8}/.test((e as Error).message),
  )
})

test('decodePartitionEntries() rejects an entry whose EndingLBA is before its StartingLBA even with a good CRC', () => {
  const bytes = encodePartitionEntries(
    [{ number: 2, typeGuid: GUID_ESP, uniqueGuid: GUID_ESP, firstLba: 100n, lastLba: 200n, attributes: 0n, name: '' }],
    128,
  )
  new DataView(bytes.buffer).setBigUint64(128 + 40, 50n, true)
  const h = { ...sampleHeader(), headerCrc32: 0, partitionEntryArrayCrc32: crc32(bytes) }
  assert.throws(
    () => decodePartitionEntries(bytes, h),
    (e: unknown) => isGptError(e) && /partition 2, got 50 < 100/.test((e as Error).message),
  )
})

test('decodePartitionEntries() refuses a hand-made header with a huge entry array before reading anything', () => {
  const h = { ...sampleHeader(), headerCrc32: 0, numberOfPartitionEntries: 0xffff_ffff }
  assert.throws(() => decodePartitionEntries(new Uint8Array(16384), h), isGptError)
})

// ---- whole tables ----

test('newGpt() leaves 34 sectors at each end on 512-byte disks and 6 on 4096-byte disks, as sgdisk does', () => {
  const a = newGpt({ sectorSize: 512, diskSectors: 131072n })
  assert.equal(a.firstUsableLba, 34n)
  assert.equal(a.lastUsableLba, 131038n)
  assert.equal(a.entryCount, 128)
  assert.match(a.diskGuid, /^[0-9A-F-]{36}$/)
  const b = newGpt({ sectorSize: 4096, diskSectors: 16384n })
  assert.equal(b.firstUsableLba, 6n)
  assert.equal(b.lastUsableLba, 16378n)
})

test('newGpt() reserves at least 16 KiB of entries even for fewer than 128 entries, and more for more', () => {
  assert.equal(newGpt({ sectorSize: 512, diskSectors: 1000n, entryCount: 4 }).firstUsableLba, 34n)
  assert.equal(newGpt({ sectorSize: 512, diskSectors: 1000n, entryCount: 256 }).firstUsableLba, 66n)
  assert.equal(entryArraySectors(128, 4096), 4)
})

test('newGpt() rejects a bad sector size, a bad entry count and a disk too small for two arrays', () => {
  assert.throws(
    () => newGpt({ sectorSize: 1024, diskSectors: 1000n }),
    (e: unknown) => isGptError(e) && /expected sector size 512 or 4096, got 1024/.test((e as Error).message),
  )
  assert.throws(() => newGpt({ sectorSize: 512, diskSectors: 1000n, entryCount: 0 }), isGptError)
  assert.throws(() => newGpt({ sectorSize: 512, diskSectors: 1000n, entryCount: 1e6 }), isGptError)
  assert.throws(
    () => newGpt({ sectorSize: 512, diskSectors: 67n }),
    (e: unknown) => isGptError(e) && /at least 68 sectors, got 67/.test((e as Error).message),
  )
  assert.equal(newGpt({ sectorSize: 512, diskSectors: 68n }).lastUsableLba, 34n)
  assert.throws(
    () => newGpt({ sectorSize: 4096, diskSectors: 11n }),
    (e: unknown) => isGptError(e) && /at least 12 sectors, got 11/.test((e as Error).message),
  )
})

test('encodeGpt() lays out MBR, primary header and entries, then backup entries and header at the end', () => {
  const g = sampleGpt(512, 256n * MiB)
  const { primary, backup, backupOffset } = encodeGpt(g, { bootCode: new Uint8Array(440).fill(0x90) })
  assert.equal(primary.length, 34 * 512)
  assert.equal(backup.length, 33 * 512)
  assert.equal(backupOffset, (g.diskSectors - 33n) * 512n)
  const mbr = decodeMbr(primary)
  assert.equal(mbr.protective, true)
  assert.equal(mbr.bootCode[439], 0x90)
  const p = decodeGptHeader(primary.subarray(512, 1024))
  const b = decodeGptHeader(backup.subarray(32 * 512))
  assert.deepEqual([p.myLba, p.alternateLba, p.partitionEntryLba], [1n, g.diskSectors - 1n, 2n])
  assert.deepEqual([b.myLba, b.alternateLba, b.partitionEntryLba], [g.diskSectors - 1n, 1n, g.diskSectors - 33n])
  assert.equal(p.partitionEntryArrayCrc32, b.partitionEntryArrayCrc32)
  assert.deepEqual(primary.subarray(1024), backup.subarray(0, 32 * 512))
})

test('encodeGpt() on 4096-byte sectors puts the MBR in the first 512 bytes of a 4096-byte LBA 0', () => {
  const g = sampleGpt(4096, 256n * MiB)
  const { primary, backup } = encodeGpt(g)
  assert.equal(primary.length, 6 * 4096)
  assert.equal(backup.length, 5 * 4096)
  assert.deepEqual([...primary.subarray(510, 512)], [0x55, 0xaa])
  assert.ok(primary.subarray(512, 4096).every((x) => x === 0))
  assert.equal(Buffer.from(primary.subarray(4096, 4104)).toString('latin1'), 'EFI PART')
  assert.equal(decodeMbr(primary).partitions[0]!.sectors, g.diskSectors - 1n)
})

test('encodeGpt() refuses a table whose usable range runs into the entry arrays', () => {
  const g = newGpt({ sectorSize: 512, diskSectors: 131072n })
  assert.throws(
    () => encodeGpt({ ...g, firstUsableLba: 33n }),
    (e: unknown) => isGptError(e) && /FirstUsableLBA ≥ 34/.test((e as Error).message),
  )
  assert.throws(
    () => encodeGpt({ ...g, lastUsableLba: 131039n }),
    (e: unknown) => isGptError(e) && /LastUsableLBA < 131039/.test((e as Error).message),
  )
})

test('decodeGpt() reads back what encodeGpt() wrote with no problems, on 512 and 4096-byte sectors', () => {
  for (const ss of [512, 4096]) {
    const g = sampleGpt(ss, 256n * MiB)
    const w = diskWindows(g)
    const r = decodeGpt(w.head, w.tail, w.diskBytes, ss)
    assert.deepEqual(r.problems, [])
    assert.equal(r.primaryOk, true)
    assert.equal(r.backupOk, true)
    assert.deepEqual(r.gpt, sorted(g))
  }
})

test('decodeGpt() falls back to the backup when the primary header is damaged', () => {
  const g = sampleGpt(512, 256n * MiB)
  const w = diskWindows(g)
  w.head.fill(0xee, 512, 1024)
  const r = decodeGpt(w.head, w.tail, w.diskBytes, 512)
  assert.equal(r.primaryOk, false)
  assert.equal(r.backupOk, true)
  assert.deepEqual(
    r.problems.map((p) => p.code),
    ['PRIMARY_DAMAGED'],
  )
  assert.deepEqual(r.gpt, sorted(g))
})

test('decodeGpt() falls back to the backup when only the primary entry array is damaged', () => {
  const g = sampleGpt(512, 256n * MiB)
  const w = diskWindows(g)
  flip(w.head, 2 * 512 + 200, 0x40)
  const r = decodeGpt(w.head, w.tail, w.diskBytes, 512)
  assert.deepEqual(
    r.problems.map((p) => p.code),
    ['PRIMARY_DAMAGED'],
  )
  assert.match(r.problems[0]!.message, /PartitionEntryArrayCRC32/)
  assert.deepEqual(r.gpt, sorted(g))
})

test('decodeGpt() reports a damaged backup and still reads the primary', () => {
  const g = sampleGpt(4096, 256n * MiB)
  const w = diskWindows(g)
  w.tail.fill(0, w.tail.length - 4096)
  const r = decodeGpt(w.head, w.tail, w.diskBytes, 4096)
  assert.equal(r.primaryOk, true)
  assert.equal(r.backupOk, false)
  assert.deepEqual(
    r.problems.map((p) => p.code),
    ['BACKUP_DAMAGED'],
  )
  assert.match(r.problems[0]!.message, /expected signature "EFI PART"/)
  assert.deepEqual(r.gpt, sorted(g))
})

test('decodeGpt() throws FORMAT_GPT naming both failures when neither copy is usable', () => {
  const g = sampleGpt()
  const w = diskWindows(g)
  flip(w.head, 600, 1)
  flip(w.tail, w.tail.length - 500, 1)
  assert.throws(
    () => decodeGpt(w.head, w.tail, w.diskBytes, 512),
    (e: unknown) => isGptError(e) && /primary: .*HeaderCRC32.*backup: .*HeaderCRC32/.test((e as Error).message),
  )
})

test('decodeGpt() hints at 4096-byte sectors when a 4Kn disk is read as 512', () => {
  const w = diskWindows(sampleGpt(4096))
  assert.throws(
    () => decodeGpt(w.head, w.tail, w.diskBytes, 512),
    (e: unknown) => isGptError(e) && /4096-byte sectors/.test((e as FormatError).hint ?? ''),
  )
})

test('decodeGpt() reports BACKUP_NOT_AT_END for an image written to a larger disk, and reads the table', () => {
  const g = sampleGpt(512, 64n * MiB)
  const { primary, backup, backupOffset } = encodeGpt(g)
  const disk = new Uint8Array(Number(96n * MiB))
  disk.set(primary, 0)
  disk.set(backup, Number(backupOffset))
  const diskBytes = BigInt(disk.length)
  // A generous tail (as an installer reading the last MiB of a small disk might): still finds the old backup.
  const wide = decodeGpt(disk.subarray(0, 34 * 512), disk.subarray(Number(40n * MiB)), diskBytes, 512)
  assert.deepEqual(
    wide.problems.map((p) => p.code),
    ['BACKUP_NOT_AT_END'],
  )
  assert.equal(wide.backupOk, true)
  assert.equal(wide.gpt.diskSectors, 96n * 2048n)
  assert.equal(wide.gpt.lastUsableLba, g.lastUsableLba)
  const narrow = decodeGpt(disk.subarray(0, 34 * 512), disk.subarray(disk.length - 33 * 512), diskBytes, 512)
  assert.deepEqual(
    narrow.problems.map((p) => p.code),
    ['BACKUP_NOT_AT_END'],
  )
  assert.equal(narrow.backupOk, false)
  assert.deepEqual(narrow.gpt.partitions, sorted(g).partitions)
})

test('decodeGpt() reports BACKUP_MISSING for an image cut short, and validateGpt() the partitions past its end', () => {
  const g = sampleGpt(512, 64n * MiB)
  const { primary } = encodeGpt(g)
  const diskBytes = 32n * MiB
  const r = decodeGpt(primary, new Uint8Array(33 * 512), diskBytes, 512)
  assert.deepEqual(
    r.problems.map((p) => p.code),
    ['BACKUP_MISSING'],
  )
  assert.equal(r.backupOk, false)
  assert.deepEqual(
    validateGpt(r.gpt).map((p) => [p.code, p.partition]),
    [
      ['OUT_OF_RANGE', undefined],
      ['OUT_OF_RANGE', 1],
    ],
  )
  assert.match(validateGpt(r.gpt)[1]!.message, /ends past the disk's last LBA 65535/)
})

test('decodeGpt() reports HEADERS_DISAGREE when both copies are valid but different', () => {
  const g = sampleGpt(512)
  const a = encodeGpt(g)
  const b = encodeGpt({ ...g, partitions: g.partitions.map((p) => ({ ...p, name: p.name + '2' })) })
  const r = decodeGpt(a.primary, b.backup, g.diskSectors * 512n, 512)
  assert.deepEqual(
    r.problems.map((p) => p.code),
    ['HEADERS_DISAGREE'],
  )
  assert.match(r.problems[0]!.message, /partitionEntryArrayCrc32/)
  assert.deepEqual(r.gpt, sorted(g))
})

test('decodeGpt() reports an MBR that is not protective without rejecting the GPT', () => {
  const w = diskWindows(sampleGpt())
  w.head[510] = 0
  const r = decodeGpt(w.head, w.tail, w.diskBytes, 512)
  assert.deepEqual(
    r.problems.map((p) => p.code),
    ['MBR_NOT_PROTECTIVE'],
  )
})

test('decodeGpt() leaves layout problems to validateGpt(), which finds them in the table read', () => {
  const g = sampleGpt()
  const bad = {
    ...g,
    partitions: [
      ...g.partitions,
      {
        ...g.partitions[0]!,
        number: 7,
        uniqueGuid: 'BBBBBBBB-0000-4000-8000-000000000007',
        firstLba: g.partitions[0]!.firstLba + 1n,
      },
    ],
  }
  const w = diskWindows(bad)
  const r = decodeGpt(w.head, w.tail, w.diskBytes, 512)
  assert.deepEqual(r.problems, [])
  assert.deepEqual(
    validateGpt(r.gpt).map((p) => [p.code, p.partition]),
    [
      ['MISALIGNED', 7],
      ['OVERLAP', 7],
    ],
  )
})

test('decodeGpt() rejects impossible disk sizes and windows', () => {
  const w = diskWindows(sampleGpt())
  assert.throws(() => decodeGpt(w.head, w.tail, 1024n, 512), isGptError)
  assert.throws(() => decodeGpt(w.head, w.tail, w.diskBytes, 520), isGptError)
  assert.throws(() => decodeGpt(w.head, new Uint8Array(5000), 4096n, 512), isGptError)
})

// ---- validate and resize ----

test('validateGpt() finds nothing wrong with the default layout', () => {
  assert.deepEqual(validateGpt(sampleGpt(512, 256n * MiB)), [])
  assert.deepEqual(validateGpt(sampleGpt(4096, 256n * MiB)), [])
})

test('validateGpt() reports misaligned starts, overlaps, out-of-range partitions and duplicate GUIDs', () => {
  const g = newGpt({ sectorSize: 512, diskSectors: 131072n, diskGuid: GUID_ESP })
  const p = (
    number: number,
    firstLba: bigint,
    lastLba: bigint,
    uniqueGuid = `AAAAAAAA-0000-4000-8000-${String(number).padStart(12, '0')}`,
  ): GptPartition => ({ number, typeGuid: GUID_ESP, uniqueGuid, firstLba, lastLba, attributes: 0n, name: '' })
  const problems = validateGpt({
    ...g,
    partitions: [
      p(1, 2048n, 4095n),
      p(2, 4000n, 6143n),
      p(3, 33n, 100n),
      p(4, 8192n, 131039n),
      p(5, 10240n, 10240n, GUID_ESP),
      p(6, 20480n, 20480n, p(1, 0n, 0n).uniqueGuid),
    ],
  })
  const got = problems.map((x) => `${x.code}:${x.partition}`).sort()
  assert.deepEqual(
    got,
    [
      'DUPLICATE_GUID:5',
      'DUPLICATE_GUID:6',
      'MISALIGNED:2',
      'MISALIGNED:3',
      'OUT_OF_RANGE:3',
      'OUT_OF_RANGE:4',
      'OVERLAP:2',
      'OVERLAP:5',
      'OVERLAP:6',
    ].sort(),
  )
})

test('validateGpt() reports a usable range that runs into the backup array, and partitions past the disk', () => {
  const g = newGpt({ sectorSize: 4096, diskSectors: 16384n })
  assert.deepEqual(validateGpt({ ...g, lastUsableLba: 16378n }), [])
  // 128 entries need 4 sectors of 4096 bytes at LBA 16379–16382.
  assert.deepEqual(
    validateGpt({ ...g, lastUsableLba: 16379n }).map((p) => p.code),
    ['OUT_OF_RANGE'],
  )
  const past = {
    ...g,
    lastUsableLba: 20000n,
    partitions: [
      {
        number: 2,
        typeGuid: GUID_ESP,
        uniqueGuid: GUID_MS_BASIC_DATA,
        firstLba: 256n,
        lastLba: 16384n,
        attributes: 0n,
        name: '',
      },
    ],
  }
  assert.deepEqual(
    validateGpt(past).map((p) => [p.code, p.partition]),
    [
      ['OUT_OF_RANGE', undefined],
      ['OUT_OF_RANGE', 2],
    ],
  )
})

test('validateGpt() takes another alignment, or none with 0', () => {
  const g = {
    ...newGpt({ sectorSize: 512, diskSectors: 131072n }),
    partitions: [
      {
        number: 1,
        typeGuid: GUID_ESP,
        uniqueGuid: GUID_ESP.replace('C', 'D'),
        firstLba: 40n,
        lastLba: 100n,
        attributes: 0n,
        name: '',
      },
    ],
  }
  assert.deepEqual(
    validateGpt(g, 4096).map((x) => x.code),
    [],
  )
  assert.deepEqual(
    validateGpt(g, 8192).map((x) => x.code),
    ['MISALIGNED'],
  )
  assert.deepEqual(validateGpt(g, 0), [])
})

test('resizeGpt() grows a table: backup at the new end, LastUsableLBA moved, partitions kept', () => {
  const g = sampleGpt(512, 64n * MiB)
  const r = resizeGpt(g, 1n << 31n)
  assert.equal(r.diskSectors, 1n << 31n)
  assert.equal(r.lastUsableLba, (1n << 31n) - 34n)
  assert.deepEqual(r.partitions, g.partitions)
  assert.equal(r.firstUsableLba, g.firstUsableLba)
  const w = diskWindows(r)
  assert.deepEqual(decodeGpt(w.head, w.tail, w.diskBytes, 512).problems, [])
})

test('resizeGpt() shrinks a table when the partitions still fit and refuses otherwise', () => {
  const g = sampleGpt(4096, 256n * MiB)
  const lastEnd = g.partitions.reduce((m, p) => (p.lastLba > m ? p.lastLba : m), 0n)
  const shrunk = resizeGpt({ ...g, partitions: g.partitions.filter((p) => p.number !== 1) }, lastEnd + 7n)
  assert.equal(shrunk.lastUsableLba, lastEnd + 1n)
  assert.throws(
    () => resizeGpt(g, lastEnd + 5n),
    (e: unknown) =>
      e instanceof FormatError &&
      e.code === 'TARGET_TOO_SMALL' &&
      new RegExp(`at least ${lastEnd + 6n} sectors, got ${lastEnd + 5n}`).test(e.message),
  )
})

test('resizeGpt() does not mutate the table it is given', () => {
  const g = sampleGpt()
  const before = structuredClone(g)
  const r = resizeGpt(g, g.diskSectors * 2n)
  r.partitions[0]!.name = 'changed'
  assert.deepEqual(g, before)
})

// ---- properties ----

const guidArb = fc.uuid().map((u) => u.toUpperCase())
// Names as sequences of UTF-16 code units (lone surrogates included: the field is raw UTF-16),
// or as real text with emoji and accents; at most 36 units, never NUL.
const nameArb = fc.oneof(
  fc.string({ unit: fc.integer({ min: 1, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 36 }),
  fc.string({ unit: 'grapheme', maxLength: 12 }).filter((s) => s.length <= 36 && !s.includes('\0')),
)

/** Random valid tables: any sector size, entry count, disk size, slot numbers, names and attributes. */
const gptArb: fc.Arbitrary<Gpt> = fc
  .record({
    sectorSize: fc.constantFrom(512, 4096),
    entryCount: fc.constantFrom(128, 128, 4, 200, 256),
    diskGuid: guidArb,
    extra: fc.bigInt({ min: 0n, max: 1n << 40n }),
    parts: fc.array(
      fc.record({
        gap: fc.bigInt({ min: 0n, max: 5000n }),
        size: fc.bigInt({ min: 1n, max: 1n << 32n }),
        typeGuid: guidArb,
        uniqueGuid: guidArb,
        attributes: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        name: nameArb,
      }),
      { maxLength: 12 },
    ),
    slotSeed: fc.array(fc.nat(), { minLength: 12, maxLength: 12 }),
  })
  .map(({ sectorSize, entryCount, diskGuid, extra, parts, slotSeed }) => {
    const array = BigInt(entryArraySectors(entryCount, sectorSize))
    const firstUsableLba = 2n + array
    let at = firstUsableLba
    const free = Array.from({ length: entryCount }, (_, i) => i + 1)
    const laid = parts.slice(0, entryCount).map((p, i) => {
      const number = free.splice(slotSeed[i]! % free.length, 1)[0]!
      const firstLba = at + p.gap
      const lastLba = firstLba + p.size - 1n
      at = lastLba + 1n
      return {
        number,
        typeGuid: p.typeGuid,
        uniqueGuid: p.uniqueGuid,
        firstLba,
        lastLba,
        attributes: p.attributes,
        name: p.name,
      }
    })
    // Room for at least one usable sector when there are no partitions.
    const diskSectors = (at === firstUsableLba ? at + 1n : at) + extra + array + 1n
    const g = newGpt({ sectorSize, diskSectors, diskGuid, entryCount })
    return sorted({ ...g, partitions: laid })
  })

test('decodeGpt(encodeGpt(x)) = x for random valid tables on 512 and 4096-byte sectors', () => {
  fc.assert(
    fc.property(gptArb, (g) => {
      const w = diskWindows(g)
      const r = decodeGpt(w.head, w.tail, w.diskBytes, g.sectorSize)
      assert.deepEqual(r.gpt, g)
      assert.equal(r.primaryOk, true)
      assert.equal(r.backupOk, true)
      assert.deepEqual(r.problems, [])
    }),
    { numRuns: 150 },
  )
})

test('decodePartitionEntries(encodePartitionEntries(x)) = x for random partitions, 128 and 256-byte entries', () => {
  fc.assert(
    fc.property(gptArb, fc.constantFrom(128, 256), (g, entrySize) => {
      const bytes = encodePartitionEntries(g.partitions, g.entryCount, entrySize)
      const h = {
        ...sampleHeader(),
        headerCrc32: 0,
        numberOfPartitionEntries: g.entryCount,
        sizeOfPartitionEntry: entrySize,
        partitionEntryArrayCrc32: crc32(bytes),
      }
      assert.deepEqual(decodePartitionEntries(bytes, h), g.partitions)
    }),
    { numRuns: 100 },
  )
})

test('a table survives resizeGpt() to a larger disk and back', () => {
  fc.assert(
    fc.property(gptArb, fc.bigInt({ min: 0n, max: 1n << 30n }), (g, more) => {
      const back = resizeGpt(resizeGpt(g, g.diskSectors + more), g.diskSectors)
      assert.deepEqual(back, g)
      const w = diskWindows(resizeGpt(g, g.diskSectors + more))
      assert.deepEqual(decodeGpt(w.head, w.tail, w.diskBytes, g.sectorSize).gpt.partitions, g.partitions)
    }),
    { numRuns: 50 },
  )
})

/** Runs decodeGpt on possibly-corrupt windows: it must return or throw FORMAT_GPT, nothing else. */
function decodeOrFormatError(
  head: Uint8Array,
  tail: Uint8Array,
  diskBytes: bigint,
  ss: number,
): ReturnType<typeof decodeGpt> | 'format-error' {
  try {
    return decodeGpt(head, tail, diskBytes, ss)
  } catch (e) {
    if (isGptError(e)) return 'format-error'
    throw e
  }
}

/** Every header byte, every byte of the used entries (slots 1, 14, 15), every 37th byte of the unused ones: a full sweep costs seconds. */
const sampled = (arrayOffset: number): boolean => {
  if (arrayOffset < 0) return true
  const slot = Math.floor(arrayOffset / 128) + 1
  return slot === 1 || slot === 14 || slot === 15 || arrayOffset % 37 === 0
}

test('changing a byte of the primary header or entry array is reported as PRIMARY_DAMAGED and the backup is used', () => {
  for (const ss of [512, 4096]) {
    const g = sampleGpt(ss)
    const w = diskWindows(g)
    const arrayEnd = ss * 2 + 128 * 128
    for (let i = ss; i < arrayEnd; i++) {
      if (i >= ss + 92 && i < 2 * ss) continue // past HeaderSize: reserved, not covered by the CRC
      if (!sampled(i - 2 * ss)) continue
      const head = new Uint8Array(w.head)
      flip(head, i, 1 << (i % 8))
      const r = decodeGpt(head, w.tail, w.diskBytes, ss)
      assert.equal(r.primaryOk, false, `byte ${i}`)
      assert.deepEqual(
        r.problems.map((p) => p.code),
        ['PRIMARY_DAMAGED'],
        `byte ${i}`,
      )
      assert.deepEqual(r.gpt, g, `byte ${i}`)
    }
  }
})

test('changing a byte of the backup header or entry array is reported as BACKUP_DAMAGED and the primary is used', () => {
  for (const ss of [512, 4096]) {
    const g = sampleGpt(ss)
    const w = diskWindows(g)
    const headerAt = w.tail.length - ss
    const arrayAt = headerAt - entryArraySectors(128, ss) * ss
    const covered = (i: number): boolean =>
      (i >= arrayAt && i < arrayAt + 128 * 128) || (i >= headerAt && i < headerAt + 92)
    for (let i = 0; i < w.tail.length; i++) {
      if (!covered(i) || (i < headerAt && !sampled(i - arrayAt))) continue
      const tail = new Uint8Array(w.tail)
      flip(tail, i, 0x80 >> (i % 8))
      const r = decodeGpt(w.head, tail, w.diskBytes, ss)
      assert.equal(r.backupOk, false, `byte ${i}`)
      assert.deepEqual(
        r.problems.map((p) => p.code),
        ['BACKUP_DAMAGED'],
        `byte ${i}`,
      )
      assert.deepEqual(r.gpt, g, `byte ${i}`)
    }
  }
})

test('random byte changes anywhere in both copies give a result or FORMAT_GPT, never another exception', () => {
  fc.assert(
    fc.property(
      gptArb,
      fc.array(fc.tuple(fc.boolean(), fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 }),
      (g, edits) => {
        const w = diskWindows(g)
        const head = new Uint8Array(w.head)
        const tail = new Uint8Array(w.tail)
        for (const [inHead, at, x] of edits) {
          const b = inHead ? head : tail
          flip(b, at % b.length, x)
        }
        const r = decodeOrFormatError(head, tail, w.diskBytes, g.sectorSize)
        if (r !== 'format-error' && r.primaryOk && r.backupOk) {
          // Both copies passed their CRCs, so only bytes outside them changed.
          assert.deepEqual(r.gpt.partitions, g.partitions)
        }
      },
    ),
    { numRuns: 300 },
  )
})

test('decodeGpt() on arbitrary bytes returns or throws FORMAT_GPT, never another exception', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 20000 }),
      fc.uint8Array({ maxLength: 20000 }),
      fc.bigInt({ min: 0n, max: 1n << 50n }),
      fc.constantFrom(512, 4096),
      fc.boolean(),
      (head, tail, size, ss, sign) => {
        if (sign && head.length >= ss + 8) head.set(Buffer.from('EFI PART'), ss)
        decodeOrFormatError(head, tail, size, ss)
      },
    ),
    { numRuns: 300 },
  )
})

test('decodeGpt() on headers with valid CRCs but hostile fields returns or throws FORMAT_GPT', () => {
  // Random field values behind a correct CRC, so the range checks, not the CRC, must stop them.
  fc.assert(
    fc.property(
      fc.record({
        myLba: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        alternateLba: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        firstUsableLba: fc.bigInt({ min: 0n, max: 1n << 20n }),
        lastUsableLba: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        partitionEntryLba: fc.oneof(fc.constant(2n), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })),
        numberOfPartitionEntries: fc.oneof(fc.constant(128), fc.nat({ max: 0xffff_ffff })),
        sizeOfPartitionEntry: fc.oneof(fc.constant(128), fc.nat({ max: 0xffff_ffff })),
        partitionEntryArrayCrc32: fc.nat({ max: 0xffff_ffff }),
        headerSize: fc.oneof(fc.constant(92), fc.integer({ min: 92, max: 512 })),
      }),
      (f) => {
        const header = encodeGptHeader({ ...sampleHeader(), ...f }, 512)
        const head = new Uint8Array(34 * 512)
        head.set(header, 512)
        decodeOrFormatError(head, head, BigInt(head.length), 512)
        try {
          decodePartitionEntries(new Uint8Array(16384), decodeGptHeader(header))
        } catch (e) {
          if (!isGptError(e)) throw e
        }
      },
    ),
    { numRuns: 1000 },
  )
})
