// GPT cross-checked both ways against the reference tools on small sparse image files:
// tables we encode must satisfy `sgdisk -v`, `sfdisk --json` and `fdisk -l -b 4096`, and tables
// those tools write must decode to what they report. (bookworm's sfdisk 2.38 has no
// --sector-size and sgdisk assumes 512-byte sectors on files, so 4096 goes through fdisk -b.)

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, open, rm, stat, truncate } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { decodeGpt, encodeGpt, newGpt, resizeGpt, type Gpt, type GptPartition } from './gpt.js'
import { GUID_BIOS_BOOT, GUID_ESP, GUID_LINUX_DATA, GUID_LINUX_ROOT_X86_64, GUID_MS_BASIC_DATA } from './guid.js'
import { run } from '../tools/run.js'

const MiB = 1n << 20n

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-gpt-'))
  try {
    return await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function writeAt(path: string, bytes: Uint8Array, offset: bigint): Promise<void> {
  const fh = await open(path, 'r+')
  try {
    await fh.write(bytes, 0, bytes.length, Number(offset))
  } finally {
    await fh.close()
  }
}

/** A sparse file of zeros. */
async function emptyFile(path: string, bytes: number): Promise<void> {
  await (await open(path, 'w')).close()
  await truncate(path, bytes)
}

/** A sparse file the size of the table's disk, holding both copies. */
async function writeDisk(path: string, gpt: Gpt): Promise<void> {
  const { primary, backup, backupOffset } = encodeGpt(gpt)
  await emptyFile(path, Number(gpt.diskSectors * BigInt(gpt.sectorSize)))
  await writeAt(path, primary, 0n)
  await writeAt(path, backup, backupOffset)
}

/** Decodes a file's GPT the way a reader of a disk would: its first and last MiB. */
async function decodeFile(path: string, sectorSize: number): Promise<ReturnType<typeof decodeGpt>> {
  const size = (await stat(path)).size
  const fh = await open(path, 'r')
  try {
    const window = Math.min(size, 1 << 20)
    const head = new Uint8Array(window)
    const tail = new Uint8Array(window)
    await fh.read(head, 0, window, 0)
    await fh.read(tail, 0, window, size - window)
    return decodeGpt(head, tail, BigInt(size), sectorSize)
  } finally {
    await fh.close()
  }
}

async function sgdiskVerify(path: string): Promise<string> {
  // sgdisk -v exits 0 even when it finds problems; its text is the verdict.
  return (await run(['sgdisk', '-v', path])).stdout
}

interface SfdiskTable {
  label: string
  id: string
  firstlba: number
  lastlba: number
  sectorsize: number
  partitions?: {
    node: string
    start: number
    size: number
    type: string
    uuid: string
    name?: string
    attrs?: string
  }[]
}

async function sfdiskJson(path: string): Promise<SfdiskTable> {
  return (JSON.parse((await run(['sfdisk', '--json', path])).stdout) as { partitiontable: SfdiskTable }).partitiontable
}

/** How sfdisk prints GPT attribute bits: names for bits 0–2, then "GUID:a,b" for the type-specific bits 48–63. */
function sfdiskAttrs(a: bigint): string | undefined {
  const names = ['RequiredPartition', 'NoBlockIOProtocol', 'LegacyBIOSBootable']
  const set = (bit: number): boolean => ((a >> BigInt(bit)) & 1n) === 1n
  const out = names.filter((_, bit) => set(bit))
  const guidBits = Array.from({ length: 16 }, (_, i) => 48 + i).filter(set)
  if (guidBits.length > 0) out.push(`GUID:${guidBits.join(',')}`)
  return out.length > 0 ? out.join(' ') : undefined
}

/** Asserts that sfdisk lists exactly our table. */
function assertSfdiskMatches(t: SfdiskTable, g: Gpt, path: string): void {
  assert.equal(t.label, 'gpt')
  assert.equal(t.id, g.diskGuid)
  assert.equal(t.sectorsize, g.sectorSize)
  assert.equal(BigInt(t.firstlba), g.firstUsableLba)
  assert.equal(BigInt(t.lastlba), g.lastUsableLba)
  const theirs = (t.partitions ?? []).map((p) => ({
    number: Number(p.node.slice(path.length)),
    start: BigInt(p.start),
    size: BigInt(p.size),
    type: p.type,
    uuid: p.uuid,
    name: p.name ?? '',
    attrs: p.attrs,
  }))
  const ours = g.partitions.map((p) => ({
    number: p.number,
    start: p.firstLba,
    size: p.lastLba - p.firstLba + 1n,
    type: p.typeGuid,
    uuid: p.uniqueGuid,
    name: p.name,
    attrs: sfdiskAttrs(p.attributes),
  }))
  assert.deepEqual(theirs, ours)
}

function defaultLayout(sectorSize: number, diskBytes: bigint): Gpt {
  const ss = BigInt(sectorSize)
  const g = newGpt({ sectorSize, diskSectors: diskBytes / ss, diskGuid: '0B6B6A3C-5D2E-4F10-9A7B-1C2D3E4F5A6B' })
  const lba = (b: bigint): bigint => b / ss
  const partitions: GptPartition[] = [
    {
      number: 1,
      typeGuid: GUID_LINUX_ROOT_X86_64,
      uniqueGuid: '6E5B1D0C-1111-4222-8333-444455556666',
      firstLba: lba(21n * MiB),
      lastLba: g.lastUsableLba,
      attributes: 0n,
      name: 'root',
    },
    {
      number: 14,
      typeGuid: GUID_BIOS_BOOT,
      uniqueGuid: '6E5B1D0C-1111-4222-8333-44445555000E',
      firstLba: lba(MiB),
      lastLba: lba(5n * MiB) - 1n,
      attributes: 0n,
      name: '',
    },
    {
      number: 15,
      typeGuid: GUID_ESP,
      uniqueGuid: '6E5B1D0C-1111-4222-8333-44445555000F',
      firstLba: lba(5n * MiB),
      lastLba: lba(21n * MiB) - 1n,
      attributes: 1n << 2n,
      name: 'EFI système',
    },
  ]
  return { ...g, partitions }
}

test('a table we encode passes sgdisk -v and sfdisk --json lists exactly our partitions', async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'disk.img')
    const g = defaultLayout(512, 64n * MiB)
    await writeDisk(img, g)
    assert.match(await sgdiskVerify(img), /No problems found/)
    assertSfdiskMatches(await sfdiskJson(img), g, img)
  })
})

test('random tables we encode pass sgdisk -v and match sfdisk --json', async () => {
  const nameChars = fc.constantFrom(...'abcXYZ019 -_.:é€ßΩж中😀')
  const guid = fc.uuid().map((u) => u.toUpperCase())
  // Attribute bits sfdisk names or numbers (0–2, 48–63); the reserved bits 3–47 it does not show.
  const attrs = fc
    .array(fc.constantFrom(0, 1, 2, 48, 55, 60, 63), { maxLength: 3 })
    .map((bits) => bits.reduce((a, b) => a | (1n << BigInt(b)), 0n))
  const arb = fc.record({
    parts: fc.array(
      fc.record({
        gapMiB: fc.nat({ max: 3 }),
        sizeMiB: fc.integer({ min: 1, max: 4 }),
        type: fc.constantFrom(GUID_ESP, GUID_LINUX_DATA, GUID_MS_BASIC_DATA, GUID_BIOS_BOOT),
        uuid: guid,
        attrs,
        name: fc.array(nameChars, { maxLength: 12 }).map((a) => a.join('')),
      }),
      { maxLength: 6 },
    ),
    slots: fc.shuffledSubarray(
      Array.from({ length: 128 }, (_, i) => i + 1),
      { minLength: 6, maxLength: 6 },
    ),
    diskGuid: guid,
  })
  await withTempDir(async (dir) => {
    const img = join(dir, 'disk.img')
    await fc.assert(
      fc.asyncProperty(arb, async ({ parts, slots, diskGuid }) => {
        let at = 1n
        const partitions = parts
          .map((p, i) => {
            const firstLba = (at + BigInt(p.gapMiB)) * 2048n
            at += BigInt(p.gapMiB + p.sizeMiB)
            return {
              number: slots[i]!,
              typeGuid: p.type,
              uniqueGuid: p.uuid,
              firstLba,
              lastLba: at * 2048n - 1n,
              attributes: p.attrs,
              name: p.name.trim(),
            }
          })
          .sort((a, b) => a.number - b.number)
        const g = { ...newGpt({ sectorSize: 512, diskSectors: (at + 1n) * 2048n, diskGuid }), partitions }
        await writeDisk(img, g)
        assert.match(await sgdiskVerify(img), /No problems found/)
        assertSfdiskMatches(await sfdiskJson(img), g, img)
        assert.deepEqual((await decodeFile(img, 512)).gpt, g)
      }),
      { numRuns: 12 },
    )
  })
})

test('a table sgdisk makes decodes to the values sgdisk was given', async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'disk.img')
    await emptyFile(img, 64 * 2 ** 20)
    await run([
      'sgdisk',
      '-o',
      '-U',
      '11111111-2222-3333-4444-555555555555',
      '-n',
      '14:2048:+4M',
      '-t',
      '14:ef02',
      '-c',
      '14:bios',
      '-u',
      '14:AAAAAAAA-0000-4000-8000-00000000000E',
      '-n',
      '15:0:+16M',
      '-t',
      '15:ef00',
      '-c',
      '15:EFI "sys" tème\\',
      '-u',
      '15:AAAAAAAA-0000-4000-8000-00000000000F',
      '-A',
      '15:set:2',
      '-A',
      '15:set:60',
      '-n',
      '1:0:0',
      '-t',
      '1:8304',
      '-c',
      '1:root',
      '-u',
      '1:AAAAAAAA-0000-4000-8000-000000000001',
      img,
    ])
    const r = await decodeFile(img, 512)
    assert.deepEqual(r.problems, [])
    assert.equal(r.gpt.diskGuid, '11111111-2222-3333-4444-555555555555')
    assert.equal(r.gpt.firstUsableLba, 34n)
    assert.equal(r.gpt.lastUsableLba, 131038n)
    assert.equal(r.gpt.entryCount, 128)
    assert.deepEqual(r.gpt.partitions, [
      {
        number: 1,
        typeGuid: GUID_LINUX_ROOT_X86_64,
        uniqueGuid: 'AAAAAAAA-0000-4000-8000-000000000001',
        firstLba: 43008n,
        lastLba: 131038n,
        attributes: 0n,
        name: 'root',
      },
      {
        number: 14,
        typeGuid: GUID_BIOS_BOOT,
        uniqueGuid: 'AAAAAAAA-0000-4000-8000-00000000000E',
        firstLba: 2048n,
        lastLba: 10239n,
        attributes: 0n,
        name: 'bios',
      },
      {
        number: 15,
        typeGuid: GUID_ESP,
        uniqueGuid: 'AAAAAAAA-0000-4000-8000-00000000000F',
        firstLba: 10240n,
        lastLba: 43007n,
        attributes: (1n << 60n) | 4n,
        name: 'EFI "sys" tème\\',
      },
    ])
    // And the same as sfdisk reads from the same file.
    assertSfdiskMatches(await sfdiskJson(img), r.gpt, img)
  })
})

test('a table sfdisk makes decodes to the values sfdisk was given', async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'disk.img')
    await emptyFile(img, 32 * 2 ** 20)
    const script = [
      'label: gpt',
      'label-id: 5A4B3C2D-1E0F-4A1B-9C2D-3E4F5A6B7C8D',
      'first-lba: 2048',
      'table-length: 248',
      `start=2048, size=4096, type=${GUID_ESP}, uuid=01234567-89AB-4CDE-8F01-23456789ABCD, name="ESP", attrs="LegacyBIOSBootable"`,
      `start=8192, size=8192, type=${GUID_MS_BASIC_DATA}, uuid=01234567-89AB-4CDE-8F01-23456789ABCE, name="cidata"`,
      '',
    ].join('\n')
    await run(['sfdisk', '--no-reread', '--no-tell-kernel', img], { input: script })
    const r = await decodeFile(img, 512)
    assert.deepEqual(r.problems, [])
    assert.equal(r.gpt.diskGuid, '5A4B3C2D-1E0F-4A1B-9C2D-3E4F5A6B7C8D')
    assert.equal(r.gpt.entryCount, 248)
    assert.equal(r.gpt.firstUsableLba, 2048n)
    assert.deepEqual(r.gpt.partitions, [
      {
        number: 1,
        typeGuid: GUID_ESP,
        uniqueGuid: '01234567-89AB-4CDE-8F01-23456789ABCD',
        firstLba: 2048n,
        lastLba: 6143n,
        attributes: 4n,
        name: 'ESP',
      },
      {
        number: 2,
        typeGuid: GUID_MS_BASIC_DATA,
        uniqueGuid: '01234567-89AB-4CDE-8F01-23456789ABCE',
        firstLba: 8192n,
        lastLba: 16383n,
        attributes: 0n,
        name: 'cidata',
      },
    ])
    assertSfdiskMatches(await sfdiskJson(img), r.gpt, img)
  })
})

// fdisk -l output with the name last, so names with spaces survive: Device Start End Sectors Type-UUID UUID Attrs? Name?
interface FdiskTable {
  id: string
  firstUsable: bigint
  lastUsable: bigint
  entries: number
  parts: { start: bigint; end: bigint; type: string; uuid: string }[]
}

async function fdiskList4096(path: string): Promise<FdiskTable> {
  const out = (await run(['fdisk', '-l', '-x', '-b', '4096', '-o', 'Device,Start,End,Sectors,Type-UUID,UUID', path]))
    .stdout
  const field = (label: string): string => new RegExp(`^${label}: (\\S+)$`, 'm').exec(out)?.[1] ?? ''
  const id = field('Disk identifier')
  const firstUsable = BigInt(field('First usable LBA'))
  const lastUsable = BigInt(field('Last usable LBA'))
  const entries = Number(field('Allocated partition entries'))
  const parts = out
    .split('\n')
    .filter((l) => l.startsWith(path))
    .map((l) => {
      const [, start, end, , type, uuid] = l.trim().split(/\s+/)
      return { start: BigInt(start!), end: BigInt(end!), type: type!, uuid: uuid! }
    })
  return { id, firstUsable, lastUsable, entries, parts }
}

test("on 4096-byte sectors, fdisk -b 4096 reads our table and verifies it, and we read fdisk's", async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'disk.img')
    const g = defaultLayout(4096, 64n * MiB)
    await writeDisk(img, g)
    const listed = await fdiskList4096(img)
    assert.equal(listed.id, g.diskGuid)
    assert.deepEqual(
      [listed.firstUsable, listed.lastUsable, listed.entries],
      [g.firstUsableLba, g.lastUsableLba, g.entryCount],
    )
    assert.deepEqual(
      listed.parts,
      g.partitions.map((p) => ({ start: p.firstLba, end: p.lastLba, type: p.typeGuid, uuid: p.uniqueGuid })),
    )
    const verify = await run(['fdisk', '-b', '4096', img], { input: 'v\nq\n' })
    assert.match(verify.stdout, /No errors detected/)

    // The other way: a table fdisk writes on 4096-byte sectors.
    const other = join(dir, 'fdisk.img')
    await emptyFile(other, 64 * 2 ** 20)
    await run(['fdisk', '-b', '4096', other], { input: 'g\nn\n1\n256\n+10M\nn\n2\n\n+4M\nx\nn\n2\nmy name\nr\nw\n' })
    const theirs = await fdiskList4096(other)
    const r = await decodeFile(other, 4096)
    assert.deepEqual(r.problems, [])
    assert.equal(r.gpt.diskGuid, theirs.id)
    assert.deepEqual(
      [r.gpt.firstUsableLba, r.gpt.lastUsableLba, r.gpt.entryCount],
      [theirs.firstUsable, theirs.lastUsable, theirs.entries],
    )
    assert.equal(r.gpt.lastUsableLba, 16384n - 6n)
    assert.deepEqual(
      r.gpt.partitions.map((p) => ({ start: p.firstLba, end: p.lastLba, type: p.typeGuid, uuid: p.uniqueGuid })),
      theirs.parts,
    )
    assert.deepEqual(
      r.gpt.partitions.map((p) => [p.number, p.firstLba, p.lastLba, p.name]),
      [
        [1, 256n, 2815n, ''],
        [2, 2816n, 3839n, 'my name'],
      ],
    )
  })
})

test('overwriting the last sector gives BACKUP_DAMAGED (sgdisk agrees) and the table still decodes from the primary', async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'disk.img')
    const g = defaultLayout(512, 64n * MiB)
    await writeDisk(img, g)
    await writeAt(img, new Uint8Array(512).fill(0xa5), g.diskSectors * 512n - 512n)
    assert.match(await sgdiskVerify(img), /corrupt GPT/)
    const r = await decodeFile(img, 512)
    assert.deepEqual(
      r.problems.map((p) => p.code),
      ['BACKUP_DAMAGED'],
    )
    assert.equal(r.primaryOk, true)
    assert.equal(r.backupOk, false)
    assert.deepEqual(r.gpt, g)
  })
})

test('overwriting LBA 1 gives PRIMARY_DAMAGED (sgdisk agrees) and the table decodes from the backup', async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'disk.img')
    const g = defaultLayout(512, 64n * MiB)
    await writeDisk(img, g)
    await writeAt(img, new Uint8Array(512).fill(0x5a), 512n)
    assert.match(await sgdiskVerify(img), /corrupt GPT/)
    const r = await decodeFile(img, 512)
    assert.deepEqual(
      r.problems.map((p) => p.code),
      ['PRIMARY_DAMAGED'],
    )
    assert.equal(r.primaryOk, false)
    assert.equal(r.backupOk, true)
    assert.deepEqual(r.gpt, g)
  })
})

test('the same on 4096-byte sectors: damaged backup, then damaged primary entries', async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'disk.img')
    const g = defaultLayout(4096, 64n * MiB)
    await writeDisk(img, g)
    await writeAt(img, new Uint8Array(4096).fill(0xa5), g.diskSectors * 4096n - 4096n)
    let r = await decodeFile(img, 4096)
    assert.deepEqual(
      r.problems.map((p) => p.code),
      ['BACKUP_DAMAGED'],
    )
    assert.deepEqual(r.gpt, g)
    await writeDisk(img, g)
    await writeAt(img, new Uint8Array(4096).fill(0x11), 2n * 4096n)
    r = await decodeFile(img, 4096)
    assert.deepEqual(
      r.problems.map((p) => p.code),
      ['PRIMARY_DAMAGED'],
    )
    assert.deepEqual(r.gpt, g)
  })
})

test('a grown disk reports BACKUP_NOT_AT_END like sgdisk, and resizeGpt() + encodeGpt() fix it as sgdisk -e does', async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'disk.img')
    const g = defaultLayout(512, 64n * MiB)
    await writeDisk(img, g)
    await truncate(img, 96 * 2 ** 20)
    assert.match(await sgdiskVerify(img), /doesn't reside\s+at the end of the disk/)
    const before = await decodeFile(img, 512)
    assert.deepEqual(
      before.problems.map((p) => p.code),
      ['BACKUP_NOT_AT_END'],
    )
    assert.equal(before.gpt.diskSectors, 96n * 2048n)
    assert.deepEqual(before.gpt.partitions, g.partitions)

    const grown = resizeGpt(before.gpt, 96n * 2048n)
    await writeDisk(img, grown)
    assert.match(await sgdiskVerify(img), /No problems found/)
    assertSfdiskMatches(await sfdiskJson(img), grown, img)

    // sgdisk -e on a copy of the original gives the same LastUsableLBA we computed.
    const copy = join(dir, 'copy.img')
    await writeDisk(copy, g)
    await truncate(copy, 96 * 2 ** 20)
    await run(['sgdisk', '-e', copy])
    const moved = await decodeFile(copy, 512)
    assert.deepEqual(moved.problems, [])
    assert.equal(moved.gpt.lastUsableLba, grown.lastUsableLba)
  })
})
