// Test fixtures: bmap files of formats 1.2, 1.3 and 1.4 as older bmap-tools wrote them, for
// the tests of the decoder and of the installer (laid out after the files bmap-tools keeps as
// its own test data, tests/test-data/test.image.bmap.v1.*; no text of theirs is copied).

import { createHash } from 'node:crypto'
import { bmapRangeBytes, type BmapChecksumType } from './bmap.js'

const digest = (algorithm: BmapChecksumType, b: Uint8Array | string): string =>
  createHash(algorithm).update(b).digest('hex')

/** What oldBmapXml() writes. */
export interface OldBmap {
  version: '1.2' | '1.3' | '1.4'
  image: Uint8Array
  blockSize: number
  /** Mapped blocks, both ends inclusive; `digest: false` leaves the range's checksum out. */
  ranges: Array<{ first: number; last: number; digest?: boolean }>
  /** 1.4 only: the ChecksumType (default sha256). */
  checksumType?: BmapChecksumType
}

/**
 * A bmap file of format 1.2, 1.3 or 1.4, element by element as those versions had them:
 * 1.2 puts MappedBlocksCount after the BlockMap and has no file checksum; 1.3 adds
 * BmapFileSHA1 (SHA-1, 40 digits); 1.4 has ChecksumType + BmapFileChecksum and chksum="…".
 * Ranges carry sha1="…" before 1.4. The file checksum is computed with its digits zeroed.
 */
export function oldBmapXml(b: OldBmap): string {
  const algorithm: BmapChecksumType = b.version === '1.4' ? (b.checksumType ?? 'sha256') : 'sha1'
  const attr = b.version === '1.4' ? 'chksum' : 'sha1'
  const totalBlocks = Math.ceil(b.image.length / b.blockSize)
  const mapped = b.ranges.reduce((n, r) => n + r.last - r.first + 1, 0)
  const ranges = b.ranges.map((r) => {
    const { offset, length } = bmapRangeBytes({ imageSize: b.image.length, blockSize: b.blockSize, ranges: [] }, r)
    const sum = r.digest === false ? '' : ` ${attr}="${digest(algorithm, b.image.subarray(offset, offset + length))}"`
    return `        <Range${sum}> ${r.first === r.last ? r.first : `${r.first}-${r.last}`} </Range>`
  })
  const zeros = '0'.repeat(algorithm === 'sha1' ? 40 : 64)
  const mappedLine = `    <MappedBlocksCount> ${mapped} </MappedBlocksCount>`
  const lines = [
    '<?xml version="1.0" ?>',
    '<!-- The block map for an image file (old format, for the tests). -->',
    '',
    `<bmap version="${b.version}">`,
    `    <ImageSize> ${b.image.length} </ImageSize>`,
    `    <BlockSize> ${b.blockSize} </BlockSize>`,
    `    <BlocksCount> ${totalBlocks} </BlocksCount>`,
    ...(b.version === '1.2' ? [] : [mappedLine]),
    ...(b.version === '1.3' ? [`    <BmapFileSHA1> ${zeros} </BmapFileSHA1>`] : []),
    ...(b.version === '1.4'
      ? [`    <ChecksumType> ${algorithm} </ChecksumType>`, `    <BmapFileChecksum> ${zeros} </BmapFileChecksum>`]
      : []),
    '    <BlockMap>',
    ...ranges,
    '    </BlockMap>',
    ...(b.version === '1.2' ? [mappedLine] : []),
    '</bmap>',
    '',
  ]
  const zeroed = lines.join('\n')
  return b.version === '1.2' ? zeroed : zeroed.replace(`> ${zeros} <`, `> ${digest(algorithm, zeroed)} <`)
}
