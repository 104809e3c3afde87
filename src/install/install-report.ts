// What an install did (or, with --dry-run, would do): the JSON document `hwimage install
// --json` prints on stdout, and its short human form.

import type { TrimmedPartition } from '../disk/gpt-sector-size.js'
import type { Signature } from '../tools/wipefs.js'
import type { StepName } from './install-plan.js'
import type { BusyReason } from './target-safety.js'
import { formatBytes } from '../units.js'

/** A 512-byte-sector image converted for a 4096-byte-sector disk (sector-conversion.ts). */
export interface SectorConversionPlan {
  from: number
  to: number
  /** The GPT re-encoded in `to`-byte LBAs, byte offsets kept; partitions whose end moved down to a `to`-byte boundary. */
  gpt: { trimmed: TrimmedPartition[] }
  /** Partitions whose FAT is made again with `to`-byte sectors (the ESP; a basic data partition if it holds a FAT). */
  fat: Array<{ partition: number; name: string; offset: number; sizeBytes: number; esp?: boolean }>
  /** Other partitions checked to work on `to`-byte sectors (ext4: block size and size). */
  checked: number[]
  /** --uefi-only was given. */
  uefiOnly: boolean
  /** With --uefi-only: the image's BIOS boot partition and MBR boot code, left as they are and unused. */
  biosBootKept?: { partition?: number; bootCode: boolean }
  /** After the install: what each FAT became. */
  converted?: FatConverted[]
}

/** One FAT made again for the disk's sector size: same volume id, label and files. */
export interface FatConverted {
  partition: number
  name: string
  volumeId: string
  label?: string
  from: { bytesPerSector: number; fatBits: number; clusters: number }
  to: { bytesPerSector: number; fatBits: number; clusters: number }
  /** Files copied (directories not counted) and their bytes. */
  files: number
  bytes: number
}

/** The install's plan, known before anything is written. */
export interface InstallPlan {
  source: { name: string; kind: 'file' | 'http' | 'stdin'; format: string; size?: number }
  bmap?: { location: string; auto: boolean; imageSize: number; blockSize: number; ranges: number; mappedBytes: number }
  image: {
    size?: number
    sectorSize?: number
    partitions?: Array<{ number: number; name: string; type: string; firstLba: string; lastLba: string }>
    problems: string[]
  }
  target: {
    path: string
    kind: 'block' | 'file'
    size: number
    sectorSize: number
    model?: string
    serial?: string
    wwn?: string
    /** The partition table found on it, if any ("GPT", "MBR"). */
    existingTable?: string
    /** Every signature on it (wipefs): what the install destroys. */
    signatures: Signature[]
    busy: BusyReason[]
  }
  /** bmap: mapped ranges written; nonzero: span zeroed then data blocks; dense: every block. */
  mode: 'bmap' | 'nonzero' | 'dense'
  /** Ranges made to read as zeros before writing, and how. */
  zeroing: Array<{ offset: number; length: number; method: string }>
  sha256Expected?: string
  /** After the image: the table moved to the end of the disk. */
  gptResize?: { diskSectors: string; lastUsableLba: string; backupOffset: number }
  /** The seed partition added at the end of the disk. */
  seed?: { partition: number; offset: number; sizeBytes: number }
  /** A 512-byte-sector image converted for the disk's 4096-byte sectors. */
  sectorConversion?: SectorConversionPlan
  /** The executor's steps that will run, in order. */
  steps: StepName[]
  /** Why the install is refused (a dry run shows the plan and exits with this). */
  refused?: { code: string; message: string; hint?: string }
}

/** The JSON report of a finished (or dry-run) install. */
export interface InstallReport extends InstallPlan {
  dryRun: boolean
  digests: {
    /** SHA-256 of the source as read (what SHA256SUMS lists). */
    source?: string
    sourceVerified: boolean
    /** SHA-256 of the uncompressed image (with --image-digest, or a raw source that was hashed). */
    image?: string
  }
  bytes: { read: number; image: number; written: number; skipped: number; zeroed: number }
  /** A download that dropped and was resumed with Range requests. */
  resumes?: { count: number; bytesRerequested: number; at: number[] }
  /** bmap ranges: digest checked; written before their check (longer than the limit); written unverified (1.x bmaps may omit digests). */
  ranges?: { verified: number; streamed: number; unverified?: number }
  readBack?: { bytes: number }
  seconds: { prepare: number; zero: number; write: number; sync: number; finish: number; verify: number; total: number }
  /** Seconds of each step that ran. */
  stepSeconds?: Partial<Record<StepName, number>>
  warnings: string[]
}

const ZERO_METHOD: Record<string, string> = {
  explicit: 'zeros written',
  zeroout: 'BLKZEROOUT',
  'punch-hole': 'hole punched',
  written: 'zeros written',
}

/** The plan in a few human lines (for --dry-run without --json). */
export function formatPlan(p: InstallPlan): string {
  const lines = [
    `source:  ${p.source.name} (${p.source.format}${p.source.size !== undefined ? `, ${formatBytes(p.source.size)}` : ''})`,
    `image:   ${p.image.size !== undefined ? formatBytes(p.image.size) : 'size unknown until read'}${p.image.sectorSize ? `, ${p.image.sectorSize}-byte sectors` : ', no GPT'}`,
  ]
  for (const part of p.image.partitions ?? [])
    lines.push(`         partition ${part.number} "${part.name}" LBA ${part.firstLba}–${part.lastLba}`)
  lines.push(
    p.bmap
      ? `bmap:    ${p.bmap.location}${p.bmap.auto ? ' (found beside the source)' : ''}: ${p.bmap.ranges} ranges, ${formatBytes(p.bmap.mappedBytes)} mapped`
      : 'bmap:    none',
  )
  lines.push(
    `target:  ${p.target.path} (${p.target.kind}, ${formatBytes(p.target.size)}, ${p.target.sectorSize}-byte sectors${p.target.model ? `, ${p.target.model}` : ''}${p.target.serial ? `, serial ${p.target.serial}` : ''})`,
  )
  if (p.target.existingTable)
    lines.push(`         holds a ${p.target.existingTable} partition table: it will be overwritten`)
  for (const s of p.target.signatures)
    lines.push(
      `         destroys: ${s.type}${s.label ? ` "${s.label}"` : ''}${s.uuid ? ` ${s.uuid}` : ''} (signature at byte ${s.offset})`,
    )
  for (const b of p.target.busy) lines.push(`         BUSY: ${b.detail}`)
  const modeText = {
    bmap: 'write the mapped ranges (each verified before it is written)',
    nonzero: 'zero the image span, then write the blocks that hold data',
    dense: 'write every block',
  }[p.mode]
  lines.push(`plan:    ${modeText}`)
  for (const z of p.zeroing)
    lines.push(`         zero ${formatBytes(z.length)} at byte ${z.offset} (${ZERO_METHOD[z.method] ?? z.method})`)
  if (p.sectorConversion) lines.push(...conversionLines(p.sectorConversion))
  if (p.gptResize)
    lines.push(
      `         move the backup GPT to the end of the disk (byte ${p.gptResize.backupOffset}), last usable LBA ${p.gptResize.lastUsableLba}`,
    )
  if (p.seed)
    lines.push(
      `         add the seed partition ${p.seed.partition} (${formatBytes(p.seed.sizeBytes)} at byte ${p.seed.offset})`,
    )
  lines.push('         write the first MiB last, after a sync')
  lines.push(`steps:   ${p.steps.join(' → ')}`)
  if (p.sha256Expected) lines.push(`sha256:  ${p.sha256Expected} (checked before the first MiB is written)`)
  if (p.refused) lines.push(`REFUSED: ${p.refused.message}`)
  return lines.join('\n') + '\n'
}

/** The dry run's lines for a sector conversion. */
function conversionLines(c: SectorConversionPlan): string[] {
  const lines = [
    `         convert for ${c.to}-byte sectors: the GPT re-encoded in ${c.to}-byte LBAs (partitions keep their byte offsets)`,
  ]
  for (const t of c.gpt.trimmed)
    lines.push(`         partition ${t.number} ends ${t.bytes} bytes earlier, on a ${c.to}-byte boundary`)
  for (const f of c.fat)
    lines.push(
      `         make partition ${f.partition} "${f.name}"'s FAT again with ${c.to}-byte sectors (same files, volume id and label)`,
    )
  if (c.checked.length)
    lines.push(`         check partition ${c.checked.join(', ')} for ${c.to}-byte sectors (ext4 block size)`)
  if (c.biosBootKept)
    lines.push(
      `         UEFI boot only: ${c.biosBootKept.partition !== undefined ? `BIOS boot partition ${c.biosBootKept.partition}` : ''}${c.biosBootKept.partition !== undefined && c.biosBootKept.bootCode ? ' and ' : ''}${c.biosBootKept.bootCode ? 'MBR boot code' : ''} kept, unused`,
    )
  return lines
}

/** A one-paragraph summary of a finished install (stdout without --json). */
export function formatReport(r: InstallReport): string {
  const lines = [
    `installed ${r.source.name} onto ${r.target.path}: ${formatBytes(r.bytes.written)} written, ${formatBytes(r.bytes.skipped)} skipped, in ${r.seconds.total.toFixed(1)} s`,
  ]
  if (r.digests.source) lines.push(`source sha256 ${r.digests.source}${r.digests.sourceVerified ? ' (verified)' : ''}`)
  if (r.digests.image) lines.push(`image sha256 ${r.digests.image}`)
  if (r.ranges)
    lines.push(
      `bmap ranges verified: ${r.ranges.verified}${r.ranges.streamed ? ` (${r.ranges.streamed} written before their check)` : ''}${r.ranges.unverified ? `, ${r.ranges.unverified} without a digest written unverified` : ''}`,
    )
  if (r.sectorConversion) {
    const c = r.sectorConversion
    const fats = (c.converted ?? []).map(
      (f) =>
        `partition ${f.partition} FAT${f.from.fatBits}/${f.from.bytesPerSector} → FAT${f.to.fatBits}/${f.to.bytesPerSector} (${f.files} files, id ${f.volumeId})`,
    )
    lines.push(
      `converted for ${c.to}-byte sectors: GPT re-encoded in ${c.to}-byte LBAs${fats.length ? `; ${fats.join('; ')}` : ''}${c.biosBootKept ? '; UEFI boot only' : ''}`,
    )
  }
  if (r.readBack) lines.push(`read back and compared: ${formatBytes(r.readBack.bytes)}`)
  if (r.resumes)
    lines.push(
      `download resumed ${r.resumes.count} time${r.resumes.count === 1 ? '' : 's'} (at byte ${r.resumes.at.join(', ')}; ${formatBytes(r.resumes.bytesRerequested)} asked for again)`,
    )
  for (const w of r.warnings) lines.push(`warning: ${w}`)
  return lines.join('\n') + '\n'
}
