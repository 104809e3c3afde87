import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { bmapRangeBytes, decodeBmap, encodeBmap, type Bmap, type BmapChecksum } from './bmap.js'
import { FormatError } from '../errors.js'
import { run } from '../tools/run.js'

const isBmapError = (e: unknown): boolean => e instanceof FormatError && e.code === 'FORMAT_BMAP'
const rejects = (input: string | Uint8Array, re: RegExp): void => {
  assert.throws(
    () => decodeBmap(input),
    (e: unknown) => isBmapError(e) && re.test((e as Error).message),
  )
}
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const SHA_A = 'a'.repeat(64)
const s256 = (digest: string): BmapChecksum => ({ algorithm: 'sha256', digest })

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-bmap-'))
  try {
    return await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** A sparse file of `size` bytes with random data written at the given byte offsets. */
async function sparseImage(path: string, size: number, writes: [offset: number, length: number][]): Promise<void> {
  const fh = await open(path, 'w')
  try {
    await fh.truncate(size)
    let seed = 1
    for (const [offset, length] of writes) {
      const b = new Uint8Array(length)
      for (let i = 0; i < length; i++) b[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24
      await fh.write(b, 0, length, offset)
    }
  } finally {
    await fh.close()
  }
}

/** Our bmap for an image: mapped ranges given in blocks, digests computed from the file. */
function bmapFor(image: Uint8Array, blockSize: number, blocks: [number, number][]): Bmap {
  const partial: Bmap = { imageSize: image.length, blockSize, ranges: [] }
  return {
    ...partial,
    ranges: blocks.map(([first, last]) => {
      const { offset, length } = bmapRangeBytes(partial, { first, last })
      return { first, last, checksum: s256(sha256(image.subarray(offset, offset + length))) }
    }),
  }
}

const sample: Bmap = {
  imageSize: 10 * 4096 + 100,
  blockSize: 4096,
  ranges: [
    { first: 0, last: 0, checksum: s256(SHA_A) },
    { first: 2, last: 5, checksum: s256('b'.repeat(64)) },
    { first: 10, last: 10, checksum: s256('c'.repeat(64)) },
  ],
}

test('decodeBmap() reads what bmaptool create writes for a sparse file, with its per-range digests', async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'disk.img')
    // Data at block 3, blocks 100–104, and in the partial last block (the image is not a whole number of blocks).
    const size = 1024 * 4096 + 1000
    await sparseImage(img, size, [
      [3 * 4096 + 10, 5],
      [100 * 4096, 20000],
      [1024 * 4096, 1000],
    ])
    await run(['bmaptool', 'create', '-o', join(dir, 'disk.bmap'), img])
    const bytes = await readFile(join(dir, 'disk.bmap'))
    const b = decodeBmap(bytes)
    assert.equal(b.version, '2.0')
    assert.equal(b.imageSize, size)
    assert.equal(b.blockSize, 4096)
    assert.equal(b.totalBlocks, 1025)
    assert.deepEqual(
      b.ranges.map((r) => [r.first, r.last]),
      [
        [3, 3],
        [100, 104],
        [1024, 1024],
      ],
    )
    assert.equal(b.mappedBlocks, 7)
    const image = await readFile(img)
    for (const r of b.ranges) {
      const { offset, length } = bmapRangeBytes(b, r)
      assert.deepEqual(r.checksum, s256(sha256(image.subarray(offset, offset + length))), `range ${r.first}-${r.last}`)
    }
    assert.deepEqual(decodeBmap(bytes.toString('utf8')), b)
  })
})

test('bmaptool copy accepts what encodeBmap writes, and the copy equals the source in mapped ranges', async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'disk.img')
    const size = 300 * 4096 + 123
    // Block 3 holds data that our bmap leaves out: bmaptool must then not copy it.
    await sparseImage(img, size, [
      [0, 4096],
      [3 * 4096, 4096],
      [7 * 4096, 3 * 4096],
      [300 * 4096, 123],
    ])
    const image = await readFile(img)
    const ours = bmapFor(image, 4096, [
      [0, 0],
      [7, 9],
      [300, 300],
    ])
    await writeFile(join(dir, 'ours.bmap'), encodeBmap(ours))
    const dest = join(dir, 'copy.img')
    await run(['bmaptool', 'copy', '--bmap', join(dir, 'ours.bmap'), img, dest])
    const copy = await readFile(dest)
    assert.equal(copy.length, size)
    for (const r of ours.ranges) {
      const { offset, length } = bmapRangeBytes(ours, r)
      assert.deepEqual(copy.subarray(offset, offset + length), image.subarray(offset, offset + length))
    }
    assert.notEqual(
      image.subarray(3 * 4096, 4 * 4096).reduce((a, b) => a | b, 0),
      0,
    )
    assert.ok(
      copy.subarray(3 * 4096, 4 * 4096).every((b) => b === 0),
      'the block left out of the bmap was not copied',
    )
  })
})

test('bmaptool copy refuses our bmap when a range digest is wrong, so it does check them', async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'disk.img')
    await sparseImage(img, 64 * 4096, [[4096, 4096]])
    const ours = bmapFor(await readFile(img), 4096, [[1, 1]])
    ours.ranges[0]!.checksum = s256(SHA_A)
    await writeFile(join(dir, 'ours.bmap'), encodeBmap(ours))
    const r = await run(['bmaptool', 'copy', '--bmap', join(dir, 'ours.bmap'), img, join(dir, 'copy.img')], {
      okStatus: [0, 1],
    })
    assert.equal(r.status, 1)
    assert.match(r.stderr, /checksum mismatch/)
  })
})

test('bmaptool copy refuses our bmap when its file checksum is wrong', async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'disk.img')
    await sparseImage(img, 64 * 4096, [[4096, 4096]])
    const xml = encodeBmap(bmapFor(await readFile(img), 4096, [[1, 1]])).replace(
      '<ImageSize> 262144',
      '<ImageSize>  262144',
    )
    await writeFile(join(dir, 'ours.bmap'), xml)
    const r = await run(['bmaptool', 'copy', '--bmap', join(dir, 'ours.bmap'), img, join(dir, 'copy.img')], {
      okStatus: [0, 1],
    })
    assert.equal(r.status, 1)
    assert.match(r.stderr, /checksum mismatch for bmap file/)
    rejects(xml, /expected file checksum/)
  })
})

test('encodeBmap() writes the file checksum bmaptool computes: SHA-256 of the file with the field zeroed', () => {
  const xml = encodeBmap(sample)
  const m = /<BmapFileChecksum> ([0-9a-f]{64}) <\/BmapFileChecksum>/.exec(xml)
  assert.ok(m)
  assert.equal(sha256(Buffer.from(xml.replace(m[1]!, '0'.repeat(64)))), m[1])
  assert.match(xml, /<Range chksum="b{64}"> 2-5 <\/Range>/)
  assert.match(xml, /<Range chksum="a{64}"> 0 <\/Range>/)
  assert.match(xml, /<BlocksCount> 11 <\/BlocksCount>/)
  assert.match(xml, /<MappedBlocksCount> 6 <\/MappedBlocksCount>/)
})

test('decodeBmap(encodeBmap(x)) = x plus block counts', () => {
  assert.deepEqual(decodeBmap(encodeBmap(sample)), {
    ...sample,
    version: '2.0',
    fileChecksum: 'sha256',
    mappedBlocks: 6,
    totalBlocks: 11,
  })
})

test('encodeBmap() refuses ranges out of order, overlapping, past the image, or with malformed digests', () => {
  const bad = (ranges: Bmap['ranges'], re: RegExp): void => {
    assert.throws(
      () => encodeBmap({ ...sample, ranges }),
      (e: unknown) => isBmapError(e) && re.test((e as Error).message),
    )
  }
  bad(
    [
      { first: 3, last: 4, checksum: s256(SHA_A) },
      { first: 1, last: 1, checksum: s256(SHA_A) },
    ],
    /sorted and apart, got range 1-1 after block 4/,
  )
  bad(
    [
      { first: 3, last: 4, checksum: s256(SHA_A) },
      { first: 4, last: 5, checksum: s256(SHA_A) },
    ],
    /sorted and apart/,
  )
  bad([{ first: 5, last: 11, checksum: s256(SHA_A) }], /inside the image's 11 blocks, got last block 11/)
  bad([{ first: 5, last: 4, checksum: s256(SHA_A) }], /first ≤ last/)
  bad([{ first: 1, last: 1, checksum: s256('A'.repeat(64)) }], /64 lowercase hex digits/)
  bad([{ first: -1, last: 1, checksum: s256(SHA_A) }], /first ≤ last/)
  assert.throws(() => encodeBmap({ ...sample, imageSize: 0 }), isBmapError)
  assert.throws(() => encodeBmap({ ...sample, blockSize: 0 }), isBmapError)
})

// ---- decode failures, each on an otherwise valid file (the checksum is recomputed after the change) ----

/** Applies `edit` to our sample's XML and fixes the file checksum, so that only the edit can be the problem. */
function edited(edit: (xml: string) => string, bmap: Bmap = sample): string {
  const xml = edit(encodeBmap(bmap)).replace(/(<BmapFileChecksum> )[0-9a-f]{64}/, `$1${'0'.repeat(64)}`)
  return xml.replace('0'.repeat(64), sha256(Buffer.from(xml)))
}

test('decodeBmap() rejects a flipped file checksum, naming expected and actual', () => {
  const xml = encodeBmap(sample)
  const m = /<BmapFileChecksum> ([0-9a-f]{64})/.exec(xml)!
  const flipped = m[1]!.replace(/^./, (c) => (c === '0' ? '1' : '0'))
  rejects(xml.replace(m[1]!, flipped), new RegExp(`expected file checksum ${flipped}, got ${m[1]}`))
})

test('decodeBmap() rejects damaged XML with a line and column', () => {
  rejects(encodeBmap(sample).replace('</BlockMap>', '</BlockMop>'), /expected "<\/BlockMap>" at line \d+, column \d+/)
  rejects(encodeBmap(sample).slice(0, -20), /at line \d+/)
  rejects('', /expected "<"/)
  rejects('<bmap version="2.0">', /expected "<\/bmap>"/)
  rejects(encodeBmap(sample) + '<extra/>', /the end of the file after the root element/)
})

test('decodeBmap() rejects versions other than 1.0–1.4 and 2.x', () => {
  rejects(
    edited((x) => x.replace('version="2.0"', 'version="1.5"')),
    /expected version 1\.0 to 1\.4 or 2\.x, got "1\.5"/,
  )
  rejects(
    edited((x) => x.replace('version="2.0"', 'version="3.0"')),
    /got "3\.0"/,
  )
  rejects(
    edited((x) => x.replace('version="2.0"', 'version="0.9"')),
    /got "0\.9"/,
  )
  rejects(
    edited((x) => x.replace('version="2.0"', 'version="2"')),
    /got "2"/,
  )
  rejects(
    edited((x) => x.replace(' version="2.0"', '')),
    /got ""/,
  )
  assert.equal(decodeBmap(edited((x) => x.replace('version="2.0"', 'version="1.4"'))).version, '1.4')
  assert.equal(decodeBmap(edited((x) => x.replace('version="2.0"', 'version="2.1"'))).version, '2.1')
})

test('decodeBmap() rejects checksum types other than sha1 and sha256, and digests of the wrong length for the type', () => {
  rejects(
    edited((x) => x.replace('<ChecksumType> sha256 <', '<ChecksumType> md5 <')),
    /expected checksum type "sha1" or "sha256", got "md5"/,
  )
  rejects(
    edited((x) => x.replace('<ChecksumType> sha256 <', '<ChecksumType> SHA256 <')),
    /got "SHA256"/,
  )
  // The type names the ranges' algorithm too: 64 digits are not a SHA-1.
  rejects(
    edited((x) => x.replace('<ChecksumType> sha256 <', '<ChecksumType> sha1 <')),
    /expected 40 lowercase hex digits as the sha1 of range 0-0/,
  )
})

test('decodeBmap() rejects ranges out of bounds, unsorted, overlapping, reversed or without digests', () => {
  rejects(
    edited((x) => x.replace('> 10 </Range>', '> 10-11 </Range>')),
    /inside the image's 11 blocks, got last block 11/,
  )
  rejects(
    edited((x) => x.replace('> 0 </Range>', '> 7 </Range>')),
    /sorted and apart, got range 2-5 after block 7/,
  )
  rejects(
    edited((x) => x.replace('> 2-5 </Range>', '> 0-5 </Range>')),
    /sorted and apart/,
  )
  rejects(
    edited((x) => x.replace('> 2-5 </Range>', '> 5-2 </Range>')),
    /first ≤ last in range 5-2/,
  )
  rejects(
    edited((x) => x.replace('> 2-5 </Range>', '> 2-x </Range>')),
    /expected a range "FIRST-LAST" or "BLOCK", got "2-x"/,
  )
  rejects(
    edited((x) => x.replace(/<Range chksum="a+">/, '<Range>')),
    /expected a chksum attribute on range "0"/,
  )
  rejects(
    edited((x) => x.replace(/chksum="a+"/, 'chksum="xyz"')),
    /64 lowercase hex digits as the sha256 of range 0-0, got "xyz"/,
  )
})

test('decodeBmap() rejects counts that disagree with the ranges and the image size', () => {
  rejects(
    edited((x) => x.replace('<BlocksCount> 11 <', '<BlocksCount> 12 <')),
    /expected BlocksCount 11 for 41060 bytes in 4096-byte blocks, got 12/,
  )
  rejects(
    edited((x) => x.replace('<MappedBlocksCount> 6 <', '<MappedBlocksCount> 7 <')),
    /expected MappedBlocksCount 6 \(the ranges' total\), got 7/,
  )
  rejects(
    edited((x) => x.replace('<ImageSize> 41060 <', '<ImageSize> 4x <')),
    /expected a whole number as ImageSize, got "4x"/,
  )
  rejects(
    edited((x) => x.replace('<BlockSize> 4096 <', '<BlockSize> 0 <')),
    /expected a positive block size, got 0/,
  )
  rejects(
    edited((x) => x.replace('<ImageSize> 41060 <', '<ImageSize> 99999999999999999999 <')),
    /whole number as ImageSize/,
  )
})

test('decodeBmap() rejects missing, repeated or stray elements', () => {
  rejects(
    edited((x) => x.replace(/\s*<BlockSize>.*<\/BlockSize>/, '')),
    /expected one <BlockSize> in <bmap>, got 0/,
  )
  rejects(
    edited((x) => x.replace(/(\s*<BlockSize>.*<\/BlockSize>)/, '$1$1')),
    /expected one <BlockSize> in <bmap>, got 2/,
  )
  rejects(
    edited((x) => x.replace('<BlockMap>', '<BlockMap><Other/>')),
    /expected only <Range> in <BlockMap>, got <Other>/,
  )
  rejects(
    edited((x) => x.replace('<BlockMap>', '<BlockMap>junk')),
    /expected only elements in <BlockMap>, got text "junk"/,
  )
  rejects(
    edited((x) => x.replace(/<bmap (.*)<\/bmap>/s, '<map $1</map>')),
    /expected root element <bmap>, got <map>/,
  )
})

test('decodeBmap() ignores unknown elements a later 2.x version may add, as bmaptool does', () => {
  const b = decodeBmap(edited((x) => x.replace('<BlockMap>', '<Note>added</Note>\n    <BlockMap>')))
  assert.deepEqual(b.ranges, sample.ranges)
})

test('decodeBmap() accepts bytes with a BOM and refuses invalid UTF-8', () => {
  const xml = Buffer.from(encodeBmap(sample))
  const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), xml])
  // The BOM is part of the bytes bmaptool would hash, so the checksum must be recomputed with it.
  const sum = /<BmapFileChecksum> ([0-9a-f]{64})/.exec(xml.toString())![1]!
  const zeroed = Buffer.from(bom.toString('latin1').replace(sum, '0'.repeat(64)), 'latin1')
  const fixed = Buffer.from(bom.toString('latin1').replace(sum, sha256(zeroed)), 'latin1')
  assert.equal(decodeBmap(fixed).imageSize, sample.imageSize)
  const bad = Buffer.from(xml)
  bad[60] = 0xff
  rejects(bad, /expected UTF-8 text/)
})

test('decodeBmap() computes the file checksum over the bytes, with non-ASCII text before the field', () => {
  const xml = edited((x) => x.replace('Image size in bytes', 'Image size in bytes — ünïcode'))
  assert.equal(decodeBmap(xml).imageSize, sample.imageSize)
  assert.equal(decodeBmap(Buffer.from(xml)).imageSize, sample.imageSize)
})

// ---- properties ----

const bmapArb: fc.Arbitrary<Bmap> = fc
  .record({
    blockSize: fc.constantFrom(512, 4096, 65536, 1000),
    blocks: fc.integer({ min: 1, max: 1 << 30 }),
    tail: fc.nat(),
    runs: fc.array(
      fc.tuple(
        fc.nat({ max: 1000 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
      ),
      { maxLength: 30 },
    ),
  })
  .map(({ blockSize, blocks, tail, runs }) => {
    let next = 0
    const ranges = runs.map(([gap, len, digest]) => {
      const first = next + gap
      next = first + len
      return { first, last: first + len - 1, checksum: s256(Buffer.from(digest).toString('hex')) }
    })
    const totalBlocks = Math.max(blocks, next)
    return { blockSize, imageSize: (totalBlocks - 1) * blockSize + 1 + (tail % blockSize), ranges }
  })

test('decodeBmap(encodeBmap(x)) = x for random valid bmaps', () => {
  fc.assert(
    fc.property(bmapArb, (b) => {
      const d = decodeBmap(encodeBmap(b))
      assert.deepEqual({ imageSize: d.imageSize, blockSize: d.blockSize, ranges: d.ranges }, b)
      assert.equal(d.totalBlocks, Math.ceil(b.imageSize / b.blockSize))
      assert.equal(
        d.mappedBlocks,
        b.ranges.reduce((n, r) => n + r.last - r.first + 1, 0),
      )
    }),
    { numRuns: 200 },
  )
})

test('any single changed byte of an encoded bmap gives FORMAT_BMAP', () => {
  fc.assert(
    fc.property(bmapArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (b, at, x) => {
      const bytes = new Uint8Array(Buffer.from(encodeBmap(b)))
      const i = at % bytes.length
      bytes[i] = (bytes[i] ?? 0) ^ x
      assert.throws(() => decodeBmap(bytes), isBmapError)
    }),
    { numRuns: 500 },
  )
})

test('decodeBmap() on arbitrary text throws only FORMAT_BMAP', () => {
  const fragments = fc.constantFrom(
    '<',
    '>',
    '</',
    '/>',
    '<!--',
    '-->',
    '&',
    '&amp;',
    '&#x0;',
    '"',
    "'",
    '=',
    ' ',
    'bmap',
    'Range',
    'version="2.0"',
    '<![CDATA[',
    '<?xml ',
    '?>',
    '\uFEFF',
    '<a>',
    '</a>',
  )
  fc.assert(
    fc.property(fc.array(fc.oneof(fragments, fc.string({ maxLength: 5 })), { maxLength: 40 }), (parts) => {
      assert.throws(() => decodeBmap(parts.join('')), isBmapError)
    }),
    { numRuns: 1000 },
  )
})

test('any single changed byte of the version of an encoded bmap gives FORMAT_BMAP', () => {
  const bytes = new Uint8Array(Buffer.from(encodeBmap(sample)))
  const at = Buffer.from(bytes).indexOf('version="2.0"') + 'version="'.length
  for (const i of [at, at + 1, at + 2]) {
    for (let x = 1; x < 256; x++) {
      const b = new Uint8Array(bytes)
      b[i] = b[i]! ^ x
      assert.throws(() => decodeBmap(b), isBmapError, `byte ${i} ^ ${x}`)
    }
  }
})
