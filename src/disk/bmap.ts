// Block map: bmaptool's XML format (bmap-tools 3.6: BmapCreate.py writes 2.0, BmapCopy.py
// reads 1.x and 2.x). The image's mapped blocks are listed as <Range> elements, each with the
// digest of its bytes (the last range stops at the image's end, not the block's). The file's
// own checksum is the digest of the file with that field's hex digits replaced by ASCII "0"s.
// What each version calls its checksums, as BmapCopy.py's _parse_bmap() reads them:
//   1.0–1.2  no file checksum; ranges may carry sha1="…" (SHA-1). bmaptool ignores those;
//            we verify them when present (the 1.2 files bmap-tools itself shipped as test data
//            carry correct ones), and a range without one is written unverified.
//   1.3      <BmapFileSHA1> (SHA-1 of the file); ranges may carry sha1="…".
//   1.4, 2.x <ChecksumType> (sha1 or sha256 here) names the algorithm of <BmapFileChecksum>
//            and of the ranges' chksum="…" (1.4 is 2.0 issued under a wrong number, BmapCopy.py
//            says). In 1.x a range may lack its digest; in 2.x we require it (bmaptool create
//            writes one unless told --no-checksum).
// We write 2.0 with SHA-256 only. The format is small and fixed, so it is read by a strict
// hand-written XML subset reader (bmap-xml.ts) rather than an XML library.

import { createHash } from 'node:crypto'
import { FormatError } from '../errors.js'
import { parseXml, type XmlElement } from './bmap-xml.js'

/** The digest algorithms of bmap files. */
export type BmapChecksumType = 'sha1' | 'sha256'

/** A digest of bytes: its algorithm and lowercase hex value. */
export interface BmapChecksum {
  algorithm: BmapChecksumType
  digest: string
}

/** One run of mapped blocks, both ends inclusive, with the digest of its bytes (absent only in 1.x files). */
export interface BmapRange {
  first: number
  last: number
  checksum?: BmapChecksum
}

/** What a bmap says about an image. */
export interface Bmap {
  imageSize: number
  blockSize: number
  /** Sorted, non-overlapping, inside the image. */
  ranges: BmapRange[]
}

/** A decoded bmap: the Bmap plus its version and block counts. */
export interface DecodedBmap extends Bmap {
  /** "1.0" to "1.4", "2.0" or another 2.x. */
  version: string
  /** The algorithm of the file checksum that was verified; undefined for versions before 1.3, which have none. */
  fileChecksum: BmapChecksumType | undefined
  /** Sum of the ranges' lengths in blocks (the file's MappedBlocksCount). */
  mappedBlocks: number
  /** ceil(imageSize / blockSize) (the file's BlocksCount). */
  totalBlocks: number
}

/** The element names of format 2.0, as BmapCreate.py writes them. */
const El = {
  root: 'bmap',
  ImageSize: 'ImageSize',
  BlockSize: 'BlockSize',
  BlocksCount: 'BlocksCount',
  MappedBlocksCount: 'MappedBlocksCount',
  ChecksumType: 'ChecksumType',
  BmapFileChecksum: 'BmapFileChecksum',
  BmapFileSHA1: 'BmapFileSHA1',
  BlockMap: 'BlockMap',
  Range: 'Range',
} as const
const VERSION = '2.0'
const CHECKSUM_TYPE = 'sha256'
const RANGE_CHECKSUM_ATTR = 'chksum'
/** Format 1.x before ChecksumType (and 1.3's file checksum element) spelled SHA-1 out. */
const RANGE_SHA1_ATTR = 'sha1'
const HEX_DIGITS: Record<BmapChecksumType, number> = { sha1: 40, sha256: 64 }
const ZERO_CHECKSUM = '0'.repeat(HEX_DIGITS.sha256)
const isChecksumType = (t: string): t is BmapChecksumType => Object.hasOwn(HEX_DIGITS, t)
const isDigest = (c: BmapChecksum): boolean => new RegExp(`^[0-9a-f]{${HEX_DIGITS[c.algorithm]}}$`).test(c.digest)

const fail = (action: string, state: string, hint?: string): FormatError =>
  new FormatError('FORMAT_BMAP', `Cannot ${action}: ${state}`, hint === undefined ? {} : { hint })

/** The byte span of a range in the image: the last range ends at the image's end, not its block's. */
export function bmapRangeBytes(bmap: Bmap, range: BmapRange): { offset: number; length: number } {
  const offset = range.first * bmap.blockSize
  return { offset, length: Math.min(bmap.imageSize, (range.last + 1) * bmap.blockSize) - offset }
}

/** Checks what both directions need: sizes, sorted non-overlapping ranges inside the image, checksums' shape. */
function check(b: Bmap, action: string): { mappedBlocks: number; totalBlocks: number } {
  const whole = (n: number): boolean => Number.isSafeInteger(n) && n >= 0
  if (!whole(b.imageSize) || b.imageSize === 0) throw fail(action, `expected a positive image size, got ${b.imageSize}`)
  if (!whole(b.blockSize) || b.blockSize === 0) throw fail(action, `expected a positive block size, got ${b.blockSize}`)
  const totalBlocks = Math.ceil(b.imageSize / b.blockSize)
  let mappedBlocks = 0
  let next = 0
  for (const r of b.ranges) {
    const name = `range ${r.first}-${r.last}`
    if (!whole(r.first) || !whole(r.last) || r.first > r.last) throw fail(action, `expected first ≤ last in ${name}`)
    if (r.first < next) throw fail(action, `expected ranges sorted and apart, got ${name} after block ${next - 1}`)
    if (r.last >= totalBlocks)
      throw fail(action, `expected ${name} inside the image's ${totalBlocks} blocks, got last block ${r.last}`)
    const c = r.checksum
    if (c !== undefined && !isDigest(c))
      throw fail(
        action,
        `expected ${HEX_DIGITS[c.algorithm]} lowercase hex digits as the ${c.algorithm} of ${name}, got "${c.digest}"`,
      )
    mappedBlocks += r.last - r.first + 1
    next = r.last + 1
  }
  return { mappedBlocks, totalBlocks }
}

const digestHex = (algorithm: BmapChecksumType, bytes: Uint8Array): string =>
  createHash(algorithm).update(bytes).digest('hex')

/** bmaptool's human_size(): "1 byte", "N bytes" below 512, else one decimal of KiB…TiB. */
function humanSize(size: number): string {
  if (size === 1) return '1 byte'
  if (size < 512) return `${size} bytes`
  let s = size
  for (const unit of ['KiB', 'MiB', 'GiB', 'TiB']) {
    s /= 1024
    if (s < 1024) return `${s.toFixed(1)} ${unit}`
  }
  return `${s.toFixed(1)} EiB`
}

/** The bmap file (format 2.0) for `bmap`, laid out as bmaptool writes it, with its file checksum. */
export function encodeBmap(bmap: Bmap): string {
  const { mappedBlocks, totalBlocks } = check(bmap, 'encode bmap')
  const digests = bmap.ranges.map((r) => {
    if (r.checksum?.algorithm !== CHECKSUM_TYPE)
      throw fail(
        'encode bmap',
        `expected a ${CHECKSUM_TYPE} checksum on range ${r.first}-${r.last} (format ${VERSION}), got ${r.checksum?.algorithm ?? 'none'}`,
      )
    return r.checksum.digest
  })
  const percent = ((mappedBlocks * 100) / totalBlocks).toFixed(1)
  const lines = [
    '<?xml version="1.0" ?>',
    '<!-- This file contains the block map for an image file: the list of mapped',
    '     (useful) blocks, which are the only ones that have to be copied to the',
    "     target device. Format 2.0 of bmap-tools; the 'version' attribute is",
    "     'major.minor', the major number changing with incompatible changes. -->",
    '',
    `<bmap version="${VERSION}">`,
    `    <!-- Image size in bytes: ${humanSize(bmap.imageSize)} -->`,
    `    <${El.ImageSize}> ${bmap.imageSize} </${El.ImageSize}>`,
    '',
    '    <!-- Size of a block in bytes -->',
    `    <${El.BlockSize}> ${bmap.blockSize} </${El.BlockSize}>`,
    '',
    '    <!-- Count of blocks in the image file -->',
    `    <${El.BlocksCount}> ${totalBlocks} </${El.BlocksCount}>`,
    '',
    `    <!-- Count of mapped blocks: ${humanSize(mappedBlocks * bmap.blockSize)} or ${percent}% -->`,
    `    <${El.MappedBlocksCount}> ${mappedBlocks} </${El.MappedBlocksCount}>`,
    '',
    '    <!-- Type of checksum used in this file -->',
    `    <${El.ChecksumType}> ${CHECKSUM_TYPE} </${El.ChecksumType}>`,
    '',
    '    <!-- The checksum of this bmap file. When it is calculated, the value of',
    '         the checksum has be zero (all ASCII "0" symbols).  -->',
    `    <${El.BmapFileChecksum}> ${ZERO_CHECKSUM} </${El.BmapFileChecksum}>`,
    '',
    '    <!-- The block map which consists of elements which may either be a',
    "         range of blocks or a single block. The 'chksum' attribute",
    '         (if present) is the checksum of this blocks range. -->',
    `    <${El.BlockMap}>`,
    ...bmap.ranges.map(
      (r, i) =>
        `        <${El.Range} ${RANGE_CHECKSUM_ATTR}="${digests[i]}"> ${r.first === r.last ? r.first : `${r.first}-${r.last}`} </${El.Range}>`,
    ),
    `    </${El.BlockMap}>`,
    `</${El.root}>`,
    '',
  ]
  const zeroed = lines.join('\n')
  // The checksum field is the only "<BmapFileChecksum> 000…" in the file: the ranges' digests are attributes.
  const marker = `<${El.BmapFileChecksum}> ${ZERO_CHECKSUM}`
  const sum = digestHex(CHECKSUM_TYPE, new TextEncoder().encode(zeroed))
  return zeroed.replace(marker, `<${El.BmapFileChecksum}> ${sum}`)
}

/** Parses a non-negative decimal integer the way the file holds it (surrounding spaces allowed). */
function integerOf(text: string, what: string): number {
  const t = text.trim()
  const n = Number(t)
  if (!/^[0-9]+$/.test(t) || !Number.isSafeInteger(n))
    throw fail('decode bmap', `expected a whole number as ${what}, got "${t}"`)
  return n
}

/** The one child element named `name`, or a FormatError naming it. */
function only(parent: XmlElement, name: string): XmlElement {
  const found = parent.children.filter((c) => c.name === name)
  if (found.length !== 1) throw fail('decode bmap', `expected one <${name}> in <${parent.name}>, got ${found.length}`)
  return found[0]!
}

/** Where a version keeps its checksums (BmapCopy.py, _parse_bmap). */
interface Scheme {
  /** The element holding the file checksum; undefined before 1.3. */
  fileElement: string | undefined
  /** The range attribute holding its digest. */
  rangeAttr: string
  /** Every range must carry a digest (2.x); 1.x files may leave them out. */
  rangesRequired: boolean
  /** Fixed by the version (1.0–1.3), or read from <ChecksumType>. */
  algorithm: BmapChecksumType | undefined
  /**
   * Elements of later versions, refused: a file that has them but an older version number
   * was changed (one byte turns "2.0" into "1.0", which has no checksums to check).
   */
  later: string[]
}

function schemeOf(version: string, action: string): Scheme {
  const m = /^([0-9]+)\.([0-9]+)$/.exec(version)
  const major = m ? Number(m[1]) : NaN
  const minor = m ? Number(m[2]) : NaN
  if (major === 2)
    return {
      fileElement: El.BmapFileChecksum,
      rangeAttr: RANGE_CHECKSUM_ATTR,
      rangesRequired: true,
      algorithm: undefined,
      later: [],
    }
  if (major === 1 && minor === 4)
    return {
      fileElement: El.BmapFileChecksum,
      rangeAttr: RANGE_CHECKSUM_ATTR,
      rangesRequired: false,
      algorithm: undefined,
      later: [],
    }
  const since14 = [El.ChecksumType, El.BmapFileChecksum]
  if (major === 1 && minor === 3)
    return {
      fileElement: El.BmapFileSHA1,
      rangeAttr: RANGE_SHA1_ATTR,
      rangesRequired: false,
      algorithm: 'sha1',
      later: since14,
    }
  if (major === 1 && minor <= 2)
    return {
      fileElement: undefined,
      rangeAttr: RANGE_SHA1_ATTR,
      rangesRequired: false,
      algorithm: 'sha1',
      later: [...since14, El.BmapFileSHA1],
    }
  throw fail(action, `expected version 1.0 to 1.4 or 2.x, got "${version}"`, 'recreate the bmap with bmaptool create')
}

/**
 * Decodes and checks a bmap file: XML syntax, version (1.0–1.4 or 2.x), sizes and counts that
 * agree, ranges sorted, apart and inside the image, the shape of their digests, and the file
 * checksum when the version has one. Pass the file's bytes when you have them so the checksum
 * is computed over exactly those bytes.
 */
export function decodeBmap(xml: string | Uint8Array): DecodedBmap {
  const action = 'decode bmap'
  let text: string
  let bytes: Uint8Array
  if (typeof xml === 'string') {
    text = xml
    bytes = new TextEncoder().encode(xml)
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(xml)
    } catch {
      throw fail(action, 'expected UTF-8 text, got invalid byte sequences')
    }
    bytes = xml
  }
  const root = parseXml(text, (state) => fail(action, state))
  if (root.name !== El.root) throw fail(action, `expected root element <${El.root}>, got <${root.name}>`)
  for (const container of [root, only(root, El.BlockMap)]) {
    if (container.text.trim() !== '')
      throw fail(
        action,
        `expected only elements in <${container.name}>, got text "${container.text.trim().slice(0, 20)}"`,
      )
  }
  const version = root.attrs.get('version') ?? ''
  const scheme = schemeOf(version, action)
  const later = root.children.find((c) => scheme.later.includes(c.name))
  if (later)
    throw fail(
      action,
      `expected no <${later.name}> in a version ${version} bmap (it came with a later version), got one`,
      'the version number was changed or damaged',
    )
  let algorithm = scheme.algorithm
  if (algorithm === undefined) {
    const named = only(root, El.ChecksumType).text.trim()
    if (!isChecksumType(named)) throw fail(action, `expected checksum type "sha1" or "sha256", got "${named}"`)
    algorithm = named
  }
  const imageSize = integerOf(only(root, El.ImageSize).text, El.ImageSize)
  const blockSize = integerOf(only(root, El.BlockSize).text, El.BlockSize)
  const blocksCount = integerOf(only(root, El.BlocksCount).text, El.BlocksCount)
  const mappedCount = integerOf(only(root, El.MappedBlocksCount).text, El.MappedBlocksCount)
  const blockMap = only(root, El.BlockMap)
  const ranges: BmapRange[] = []
  for (const el of blockMap.children) {
    if (el.name !== El.Range) throw fail(action, `expected only <${El.Range}> in <${El.BlockMap}>, got <${el.name}>`)
    const m = /^\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?$/.exec(el.text)
    if (!m) throw fail(action, `expected a range "FIRST-LAST" or "BLOCK", got "${el.text.trim()}"`)
    const first = integerOf(m[1]!, 'range start')
    const last = m[2] === undefined ? first : integerOf(m[2], 'range end')
    const digest = el.attrs.get(scheme.rangeAttr)
    if (digest === undefined && scheme.rangesRequired) {
      throw fail(
        action,
        `expected a ${scheme.rangeAttr} attribute on range "${el.text.trim()}"`,
        'create the bmap with checksums (without --no-checksum)',
      )
    }
    ranges.push(digest === undefined ? { first, last } : { first, last, checksum: { algorithm, digest } })
  }
  const bmap: Bmap = { imageSize, blockSize, ranges }
  const { mappedBlocks, totalBlocks } = check(bmap, action)
  if (blocksCount !== totalBlocks)
    throw fail(
      action,
      `expected BlocksCount ${totalBlocks} for ${imageSize} bytes in ${blockSize}-byte blocks, got ${blocksCount}`,
    )
  if (mappedCount !== mappedBlocks)
    throw fail(action, `expected MappedBlocksCount ${mappedBlocks} (the ranges' total), got ${mappedCount}`)
  if (scheme.fileElement !== undefined)
    verifyFileChecksum(text, bytes, only(root, scheme.fileElement), algorithm, action)
  return {
    version,
    fileChecksum: scheme.fileElement === undefined ? undefined : algorithm,
    imageSize,
    blockSize,
    ranges,
    mappedBlocks,
    totalBlocks,
  }
}

/** Checks the file checksum in `sumEl`: the file's digest with the field's hex digits replaced by ASCII "0"s. */
function verifyFileChecksum(
  text: string,
  bytes: Uint8Array,
  sumEl: XmlElement,
  algorithm: BmapChecksumType,
  action: string,
): void {
  const expected = sumEl.text.trim()
  const digits = HEX_DIGITS[algorithm]
  if (!isDigest({ algorithm, digest: expected }))
    throw fail(action, `expected ${digits} lowercase hex digits (${algorithm}) in <${sumEl.name}>, got "${expected}"`)
  // Zero the digest where the element's text holds it, in bytes (the text before it may hold multi-byte characters).
  const raw = text.slice(sumEl.contentStart, sumEl.contentEnd).indexOf(expected)
  if (raw < 0) throw fail(action, `expected the digest in <${sumEl.name}> written out, not as character references`)
  const at = new TextEncoder().encode(text.slice(0, sumEl.contentStart + raw)).length
  const zeroed = new Uint8Array(bytes)
  zeroed.fill(0x30, at, at + digits)
  const actual = digestHex(algorithm, zeroed)
  if (actual !== expected)
    throw fail(
      action,
      `expected file checksum ${expected}, got ${actual}`,
      'the bmap file was changed or damaged after it was made',
    )
}
