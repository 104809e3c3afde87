import assert from 'node:assert/strict'
import { test } from 'node:test'
import { FormatError } from '../errors.js'
import { decodeGpt, encodeGpt, newGpt, resizeGpt, validateGpt, type Gpt } from './gpt.js'
import { convertGptSectorSize } from './gpt-sector-size.js'
import { GUID_BIOS_BOOT, GUID_ESP, GUID_LINUX_ROOT_X86_64 } from './guid.js'

const MiB = 1 << 20

function table(diskBytes: number, parts: Array<[number, string, number, number]>): Gpt {
  const gpt = newGpt({
    sectorSize: 512,
    diskSectors: BigInt(diskBytes / 512),
    diskGuid: '01234567-89AB-4CDE-8F01-23456789ABCD',
  })
  return {
    ...gpt,
    partitions: parts.map(([number, typeGuid, first, bytes]) => ({
      number,
      typeGuid,
      uniqueGuid: `00000000-0000-4000-8000-0000000000${String(number).padStart(2, '0')}`,
      firstLba: BigInt(first / 512),
      lastLba: BigInt((first + bytes) / 512 - 1),
      attributes: 0n,
      name: `p${number}`,
    })),
  }
}

const image = () =>
  table(64 * MiB, [
    [1, GUID_LINUX_ROOT_X86_64, 10 * MiB, 53 * MiB],
    [14, GUID_BIOS_BOOT, MiB, MiB],
    [15, GUID_ESP, 2 * MiB, 8 * MiB],
  ])

test('convertGptSectorSize() keeps every partition at its bytes, counted in 4 KiB LBAs', () => {
  const src = image()
  const { gpt, trimmed } = convertGptSectorSize(src, 4096)
  assert.deepEqual(trimmed, [])
  assert.equal(gpt.sectorSize, 4096)
  assert.equal(gpt.diskSectors, BigInt((64 * MiB) / 4096))
  assert.equal(gpt.firstUsableLba, 6n, 'LBA 0, the header, 4 sectors of entries')
  assert.equal(gpt.lastUsableLba, gpt.diskSectors - 6n)
  assert.equal(gpt.diskGuid, src.diskGuid)
  for (const p of src.partitions) {
    const q = gpt.partitions.find((x) => x.number === p.number)!
    assert.equal(q.firstLba * 4096n, p.firstLba * 512n)
    assert.equal((q.lastLba + 1n) * 4096n, (p.lastLba + 1n) * 512n)
    assert.deepEqual({ ...q, firstLba: 0n, lastLba: 0n }, { ...p, firstLba: 0n, lastLba: 0n })
  }
  assert.deepEqual(validateGpt(gpt), [])
  // It encodes and decodes as a 4Kn table, on a disk of its size and on a larger one.
  for (const g of [gpt, resizeGpt(gpt, BigInt((256 * MiB) / 4096))]) {
    const { primary, backup, backupOffset } = encodeGpt(g)
    const bytes = Number(g.diskSectors) * 4096
    const tail = new Uint8Array(bytes - Number(backupOffset))
    tail.set(backup)
    const d = decodeGpt(primary, tail, BigInt(bytes), 4096)
    assert.ok(d.primaryOk && d.backupOk)
    assert.deepEqual(d.gpt.partitions, g.partitions)
  }
  assert.equal(src.sectorSize, 512, 'the input is not changed')
})

test('convertGptSectorSize() moves an end that is not on a 4 KiB boundary down to one, and says so', () => {
  // The last partition of an official cloud image ends at LastUsableLBA (33 sectors before the end).
  const src = image()
  const last = { ...src.partitions[0]!, lastLba: src.lastUsableLba }
  const { gpt, trimmed } = convertGptSectorSize({ ...src, partitions: [last, ...src.partitions.slice(1)] }, 4096)
  const endBytes = (src.lastUsableLba + 1n) * 512n
  assert.deepEqual(trimmed, [{ number: 1, bytes: Number(endBytes % 4096n) }])
  assert.equal((gpt.partitions[0]!.lastLba + 1n) * 4096n, (endBytes / 4096n) * 4096n)
})

test('convertGptSectorSize() refuses a partition that does not start on a 4 KiB boundary, or lies where the 4 KiB entry arrays go', () => {
  const odd = table(64 * MiB, [[1, GUID_LINUX_ROOT_X86_64, MiB + 512, MiB]])
  assert.throws(
    () => convertGptSectorSize(odd, 4096),
    (e: unknown) =>
      e instanceof FormatError && e.code === 'FORMAT_GPT' && /partition 1 starts at byte 1049088/.test(e.message),
  )
  const early = table(64 * MiB, [[1, GUID_LINUX_ROOT_X86_64, 20480, MiB]])
  assert.throws(
    () => convertGptSectorSize(early, 4096),
    (e: unknown) => e instanceof FormatError && /overlaps where the 4096-byte entry arrays go/.test(e.message),
  )
  assert.throws(
    () => convertGptSectorSize(image(), 2048),
    (e: unknown) => e instanceof FormatError,
  )
})
