// The plan of an install, decided before anything is written: the image's size (from its
// bmap, its GPT, or the source), the write mode, and what is zeroed first. The sizes the
// bmap, the partition table and the source give must agree: a disagreement means the bmap
// belongs to another image or the source is incomplete, and is refused here.

import { bmapRangeBytes, type DecodedBmap } from '../disk/bmap.js'
import { InputError } from '../errors.js'
import type { ByteSource } from '../io/byte-source.js'
import type { ImageReader } from '../io/image-reader.js'
import type { ImageFormat } from './detect-format.js'
import { FIRST_MIB, type ImageLayout } from './image-layout.js'
import type { InstallPlan, SectorConversionPlan } from './install-report.js'
import type { LocatedBmap } from './locate-bmap.js'
import type { TargetInfo } from './target-info.js'
import type { BusyReason } from './target-safety.js'
import type { ImageRange } from './write-image.js'
import type { Gpt } from '../disk/gpt.js'
import type { Signature } from '../tools/wipefs.js'
import type { PlacedPartition } from './install-options.js'

/** The timed stages of an install (each step counts towards one). */
export type Stage = 'prepare' | 'zero' | 'write' | 'sync' | 'finish' | 'verify'

/**
 * The executor's steps, in order (install-steps.ts runs them): zero the target's first and
 * last MiB → zero the image's span (no bmap) → write the image, first MiB held back →
 * check the source (size, digest) → make the FATs again for a 4Kn disk → finish the table
 * (the backup entries at the disk's end) → add the seed → write the first MiB, then the
 * backup header → read back.
 */
export const STEP_NAMES = [
  'zero-ends',
  'zero-span',
  'write-image',
  'check-source',
  'convert-fat',
  'finish-table',
  'add-seed',
  'write-first-mib',
  'read-back',
] as const

/** One step of the executor. */
export type StepName = (typeof STEP_NAMES)[number]

/** Everything describePlan() looks at. */
export interface PlanInputs {
  source: ByteSource
  format: ImageFormat
  located: LocatedBmap | undefined
  layout: ImageLayout
  target: TargetInfo
  busy: BusyReason[]
  reader: ImageReader
  /** Bytes of the image read for the layout (less than 1 MiB: that is the whole image). */
  headBytes: number
  expected: string | undefined
  existingTable: string | undefined
  /** What wipefs sees on the target (partition tables, file systems, RAID, LVM, LUKS). */
  signatures: Signature[]
  /** The image's table made for the disk: its new size and where the backup goes. */
  resized?: { gpt: Gpt; backupOffset: number }
  /** The seed partition, placed at the disk's end. */
  seed?: PlacedPartition
  /** A 512-byte-sector image converted for a 4Kn disk. */
  conversion?: SectorConversionPlan
  verify: boolean
}

/** The bmap's ranges in bytes, with their digests (SHA-1 or SHA-256; none in some 1.x files), labelled for error messages. */
export function bmapRanges(bmap: DecodedBmap): ImageRange[] {
  return bmap.ranges.map((r, i) => ({
    ...bmapRangeBytes(bmap, r),
    ...(r.checksum ? { checksum: r.checksum } : {}),
    label: `bmap range ${i + 1} (blocks ${r.first}–${r.last})`,
  }))
}

/** The image's size as far as it is known before reading it all; throws when the sources of it disagree. */
export function imageSizeOf(
  p: Pick<PlanInputs, 'located' | 'layout' | 'reader' | 'headBytes' | 'source'>,
): number | undefined {
  const { located, layout } = p
  const fromGpt = layout.gptImageSize
  const known = p.reader.knownSize ?? (p.headBytes < FIRST_MIB ? p.headBytes : undefined)
  if (located && fromGpt !== undefined && located.bmap.imageSize !== fromGpt) {
    throw new InputError(
      'FORMAT_BMAP',
      `Cannot use bmap "${located.location}": it describes a ${located.bmap.imageSize}-byte image, the image's partition table a ${fromGpt}-byte one`,
      {
        hint: 'the bmap belongs to another image: use the .bmap made with this image, or --no-bmap',
      },
    )
  }
  if (located && known !== undefined && located.bmap.imageSize !== known) {
    throw new InputError(
      'FORMAT_BMAP',
      `Cannot use bmap "${located.location}": it describes a ${located.bmap.imageSize}-byte image, the image has ${known} bytes`,
      {
        hint: 'the bmap belongs to another image: use the .bmap made with this image, or --no-bmap',
      },
    )
  }
  if (known !== undefined && fromGpt !== undefined && known < fromGpt) {
    throw new InputError(
      'SOURCE_TRUNCATED',
      `Cannot install "${p.source.name}": the image has ${known} bytes, its partition table says ${fromGpt}`,
      { hint: 'the image is incomplete: download it again' },
    )
  }
  return located?.bmap.imageSize ?? known ?? fromGpt
}

/** The plan: sizes, mode and zeroing (methods are filled in when the zeroing runs). */
export function describePlan(p: PlanInputs): InstallPlan {
  const size = imageSizeOf(p)
  const mode = p.located ? 'bmap' : size !== undefined ? 'nonzero' : 'dense'
  const t = p.target
  const end = Math.floor(t.size / t.sectorSize) * t.sectorSize
  const zeroing: InstallPlan['zeroing'] = [
    { offset: 0, length: Math.min(FIRST_MIB, end), method: 'explicit' },
    { offset: Math.max(0, end - FIRST_MIB), length: Math.min(FIRST_MIB, end), method: 'explicit' },
  ]
  if (mode === 'nonzero' && size !== undefined && size > FIRST_MIB) {
    const spanEnd = Math.min(end, Math.ceil(size / t.sectorSize) * t.sectorSize)
    zeroing.push({
      offset: FIRST_MIB,
      length: spanEnd - FIRST_MIB,
      method: t.kind === 'block' ? 'zeroout' : 'punch-hole',
    })
  }
  const plan: InstallPlan = {
    source: {
      name: p.source.name,
      kind: p.source.kind,
      format: p.format,
      ...(p.source.size !== undefined ? { size: p.source.size } : {}),
    },
    image: {
      ...(size !== undefined ? { size } : {}),
      ...(p.layout.sectorSize ? { sectorSize: p.layout.sectorSize } : {}),
      ...(p.layout.gpt
        ? {
            partitions: p.layout.gpt.partitions.map((x) => ({
              number: x.number,
              name: x.name,
              type: x.typeGuid,
              firstLba: String(x.firstLba),
              lastLba: String(x.lastLba),
            })),
          }
        : {}),
      problems: p.layout.problems.map((x) => x.message),
    },
    target: {
      path: t.path,
      kind: t.kind,
      size: t.size,
      sectorSize: t.sectorSize,
      ...(t.model ? { model: t.model } : {}),
      ...(t.serial ? { serial: t.serial } : {}),
      ...(t.wwn ? { wwn: t.wwn } : {}),
      ...(p.existingTable ? { existingTable: p.existingTable } : {}),
      signatures: p.signatures,
      busy: p.busy,
    },
    mode,
    zeroing,
    ...(p.expected ? { sha256Expected: p.expected } : {}),
    ...(p.resized
      ? {
          gptResize: {
            diskSectors: String(p.resized.gpt.diskSectors),
            lastUsableLba: String(p.resized.gpt.lastUsableLba),
            backupOffset: p.resized.backupOffset,
          },
        }
      : {}),
    ...(p.seed ? { seed: { partition: p.seed.number, offset: p.seed.offset, sizeBytes: p.seed.sizeBytes } } : {}),
    ...(p.conversion ? { sectorConversion: p.conversion } : {}),
    steps: STEP_NAMES.filter((s) => {
      if (s === 'zero-span') return zeroing.length > 2
      if (s === 'convert-fat') return p.conversion !== undefined
      if (s === 'finish-table') return p.resized !== undefined
      if (s === 'add-seed') return p.seed !== undefined
      if (s === 'read-back') return p.verify
      return true
    }),
  }
  if (p.located) {
    const b = p.located.bmap
    plan.bmap = {
      location: p.located.location,
      auto: p.located.auto,
      imageSize: b.imageSize,
      blockSize: b.blockSize,
      ranges: b.ranges.length,
      mappedBytes: bmapRanges(b).reduce((s, r) => s + r.length, 0),
    }
  }
  return plan
}
