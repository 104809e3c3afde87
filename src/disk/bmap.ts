// Block map: bmaptool's XML format 2.0 (bmap-tools 3.6, BmapCreate.py writes it, BmapCopy.py
// reads it). The image's mapped blocks are listed as <Range> elements, each with the SHA-256 of
// its bytes (the last range stops at the image's end, not the block's). <BmapFileChecksum> is
// the SHA-256 of the file itself with that field's 64 hex digits replaced by ASCII "0"s.
// The format is small and fixed, so it is read by a strict hand-written XML subset reader
// (bmap-xml.ts) rather than an XML library.

import { createHash } from 'node:crypto'
import { FormatError } from '../errors.js'
import { parseXml, type XmlElement } from './bmap-xml.js'

/** One run of mapped blocks, both ends inclusive, with the SHA-256 (lowercase hex) of its bytes. */
export interface BmapRange {
  first: number
  last: number
  sha256: string
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
  /** "2.0" or another 2.x. */
  version: string
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
  BlockMap: 'BlockMap',
  Range: 'Range',
} as const
const VERSION = '2.0'
const CHECKSUM_TYPE = 'sha256'
const RANGE_CHECKSUM_ATTR = 'chksum'
const SHA256_HEX = /^[0-9a-f]{64}$/
const ZERO_CHECKSUM = '0'.repeat(64)

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
    if (r.last >= totalBlocks) throw fail(action, `expected ${name} inside the image's ${totalBlocks} blocks, got last block ${r.last}`)
    if (!SHA256_HEX.test(r.sha256)) throw fail(action, `expected 64 lowercase hex digits as the SHA-256 of ${name}, got "${r.sha256}"`)
    mappedBlocks += r.last - r.first + 1
    next = r.last + 1
  }
  return { mappedBlocks, totalBlocks }
}

const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

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
      (r) => `        <${El.Range} ${RANGE_CHECKSUM_ATTR}="${r.sha256}"> ${r.first === r.last ? r.first : `${r.first}-${r.last}`} </${El.Range}>`,
    ),
    `    </${El.BlockMap}>`,
    `</${El.root}>`,
    '',
  ]
  const zeroed = lines.join('\n')
  // The checksum field is the only "<BmapFileChecksum> 000…" in the file: the ranges' digests are attributes.
  const marker = `<${El.BmapFileChecksum}> ${ZERO_CHECKSUM}`
  const sum = sha256Hex(new TextEncoder().encode(zeroed))
  return zeroed.replace(marker, `<${El.BmapFileChecksum}> ${sum}`)
}

/** Parses a non-negative decimal integer the way the file holds it (surrounding spaces allowed). */
function integerOf(text: string, what: string): number {
  const t = text.trim()
  const n = Number(t)
  if (!/^[0-9]+$/.test(t) || !Number.isSafeInteger(n)) throw fail('decode bmap', `expected a whole number as ${what}, got "${t}"`)
  return n
}

/** The one child element named `name`, or a FormatError naming it. */
function only(parent: XmlElement, name: string): XmlElement {
  const found = parent.children.filter((c) => c.name === name)
  if (found.length !== 1) throw fail('decode bmap', `expected one <${name}> in <${parent.name}>, got ${found.length}`)
  return found[0]!
}

/**
 * Decodes and checks a bmap file: XML syntax, version 2.x, sizes and counts that agree, ranges
 * sorted, apart and inside the image, SHA-256 checksums, and the file checksum. Pass the file's
 * bytes when you have them so the checksum is computed over exactly those bytes.
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
    if (container.text.trim() !== '') throw fail(action, `expected only elements in <${container.name}>, got text "${container.text.trim().slice(0, 20)}"`)
  }
  const version = root.attrs.get('version') ?? ''
  if (!/^2\.[0-9]+$/.test(version)) throw fail(action, `expected version 2.x, got "${version}"`, 'bmap files of versions 1.x are not supported; recreate it with bmaptool 3.x')
  const checksumType = only(root, El.ChecksumType).text.trim()
  if (checksumType !== CHECKSUM_TYPE) throw fail(action, `expected checksum type "${CHECKSUM_TYPE}", got "${checksumType}"`)
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
    const sha256 = el.attrs.get(RANGE_CHECKSUM_ATTR)
    if (sha256 === undefined) {
      throw fail(action, `expected a ${RANGE_CHECKSUM_ATTR} attribute on range "${el.text.trim()}"`, 'create the bmap with checksums (without --no-checksum)')
    }
    ranges.push({ first, last, sha256 })
  }
  const bmap: Bmap = { imageSize, blockSize, ranges }
  const { mappedBlocks, totalBlocks } = check(bmap, action)
  if (blocksCount !== totalBlocks) throw fail(action, `expected BlocksCount ${totalBlocks} for ${imageSize} bytes in ${blockSize}-byte blocks, got ${blocksCount}`)
  if (mappedCount !== mappedBlocks) throw fail(action, `expected MappedBlocksCount ${mappedBlocks} (the ranges' total), got ${mappedCount}`)

  const sumEl = only(root, El.BmapFileChecksum)
  const expected = sumEl.text.trim()
  if (!SHA256_HEX.test(expected)) throw fail(action, `expected 64 lowercase hex digits in <${El.BmapFileChecksum}>, got "${expected}"`)
  // Zero the digest where the element's text holds it, in bytes (the text before it may hold multi-byte characters).
  const raw = text.slice(sumEl.contentStart, sumEl.contentEnd).indexOf(expected)
  if (raw < 0) throw fail(action, `expected the digest in <${El.BmapFileChecksum}> written out, not as character references`)
  const at = new TextEncoder().encode(text.slice(0, sumEl.contentStart + raw)).length
  const zeroed = new Uint8Array(bytes)
  zeroed.fill(0x30, at, at + expected.length)
  const actual = sha256Hex(zeroed)
  if (actual !== expected) throw fail(action, `expected file checksum ${expected}, got ${actual}`, 'the bmap file was changed or damaged after it was made')
  return { version, imageSize, blockSize, ranges, mappedBlocks, totalBlocks }
}
