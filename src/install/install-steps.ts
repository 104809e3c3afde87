// The installer's executor: runs a prepared install's steps in order, each small, each
// announced by a `step` event (and the onStep hook). The promise it keeps:
//
//   at every instant the target holds either no valid partition table — neither the
//   primary GPT (first MiB) nor the backup GPT (last sectors) — or the complete,
//   verified image (and seed).
//
// How: the first step zeroes both ends; the image is written with its first MiB held back;
// the backup table's entries go to the disk's end without their header; the first MiB
// (the primary table) is written after a sync of everything else, and only then the
// backup header. Any failure or interrupt after the first write zeroes both ends again
// before the error is reported (its code kept, the message saying what was zeroed).

import { performance } from 'node:perf_hooks'
import { decodeGpt } from '../disk/gpt.js'
import { HwimageError, InputError, InterruptedError, withContext } from '../errors.js'
import { alignedBytes, SlotPool } from '../io/aligned-memory.js'
import type { HashThread } from '../io/hash-thread.js'
import { TargetDevice } from '../io/target-device.js'
import { zeroRange } from '../io/zero-range.js'
import { run } from '../tools/run.js'
import { patchFirstMiB } from './gpt-finish.js'
import { FIRST_MIB } from './image-layout.js'
import type { InstallFacts, InstallOptions } from './install-options.js'
import { bmapRanges, type Stage, type StepName } from './install-plan.js'
import type { FatConverted, InstallReport } from './install-report.js'
import type { PreparedInstall } from './prepare-install.js'
import { readBack, type WrittenItem } from './read-back.js'
import { convertFilesystems } from './sector-conversion.js'
import { writeImage, type WriteOutcome } from './write-image.js'

/** Ranges up to this size are verified before they are written (the image builder splits ranges at 32 MiB). */
export const VERIFY_LIMIT = 64 << 20
const SLOT = 4 << 20
const SLOTS = VERIFY_LIMIT / SLOT + 8
const ZERO_BLOCK = 4096

/** What the steps share while they run: the open target and what earlier steps produced. */
interface Execution {
  readonly p: PreparedInstall
  readonly opts: InstallOptions
  readonly dev: TargetDevice
  readonly pool: SlotPool
  readonly hasher: HashThread
  /** The target's end, in whole sectors. */
  readonly end: number
  warnings: string[]
  zeroing: Array<{ offset: number; length: number; method: string }>
  zeroedBytes: number
  outcome?: WriteOutcome
  imageBytes?: number
  sourceDigest?: string
  /** The first MiB to write last (the image's, patched with the disk's table). */
  firstMiB?: Uint8Array
  /** The backup GPT header, written after the first MiB. */
  backupHeader?: { offset: number; bytes: Uint8Array }
  written: WrittenItem[]
  readBackBytes?: number
  /** What the convert-fat step made of each FAT (a 4Kn disk). */
  converted?: FatConverted[]
  convertedBytes?: number
}

const STAGE_OF: Record<StepName, Stage> = {
  'zero-ends': 'zero',
  'zero-span': 'zero',
  'write-image': 'write',
  'check-source': 'write',
  'convert-fat': 'finish',
  'finish-table': 'finish',
  'add-seed': 'finish',
  'write-first-mib': 'finish',
  'read-back': 'verify',
}

const STEPS: Record<StepName, (x: Execution) => Promise<void>> = {
  /** Both ends zeroed and synced: no old primary or backup table survives a failure from here on. */
  async 'zero-ends'(x) {
    const head = Math.min(FIRST_MIB, x.end)
    const tail = Math.max(0, x.end - FIRST_MIB)
    await x.dev.writeZeros(0, head)
    await x.dev.writeZeros(tail, x.end - tail)
    await x.dev.sync()
    x.zeroedBytes += head + (x.end - tail)
    x.zeroing.push(...x.p.plan.zeroing.slice(0, 2).map((z) => ({ ...z })))
  },

  /** No bmap: the image's span made to read as zeros with a guarantee, so only data blocks are written. */
  async 'zero-span'(x) {
    for (const z of x.p.plan.zeroing.slice(2)) {
      x.opts.onProgress?.({ stage: 'zero', done: 0, total: z.length })
      const method = await zeroRange(x.dev, z.offset, z.length, signalOpt(x))
      x.zeroing.push({ ...z, method })
      x.zeroedBytes += z.length
      x.opts.onProgress?.({ stage: 'zero', done: z.length, total: z.length })
    }
  },

  /** The image, bmap ranges verified before they are written; the first MiB held back. */
  async 'write-image'(x) {
    const { plan, located, head } = x.p
    x.outcome = await writeImage(
      x.p.reader,
      x.dev,
      x.pool,
      {
        mode: plan.mode,
        ranges: located ? bmapRanges(located.bmap) : undefined,
        imageSize: plan.image.size,
        holdBack: Math.min(FIRST_MIB, head.length),
        targetSize: x.end,
        verifyLimit: VERIFY_LIMIT,
        blockSize: ZERO_BLOCK,
        recordExtents: x.opts.verify === true,
      },
      {
        signal: x.opts.signal,
        hasher: x.hasher,
        onProgress: (q) =>
          x.opts.onProgress?.({
            stage: 'write',
            ...q,
            ...(x.p.resumes.count > 0 ? { resumes: x.p.resumes.count } : {}),
          }),
      },
    )
    x.written.push(...x.outcome.extents)
    if (x.outcome.rangesVerified > 0)
      x.opts.onEvent?.('verified', { what: 'bmap-ranges', ranges: x.outcome.rangesVerified })
  },

  /** The source read to its end: its size as the bmap and the table say, its digest as expected. */
  async 'check-source'(x) {
    const { source, located, expected, plan } = x.p
    const imageBytes = await x.p.reader.finish()
    x.imageBytes = imageBytes
    if (located && imageBytes !== located.bmap.imageSize) {
      throw new InputError(
        imageBytes < located.bmap.imageSize ? 'SOURCE_TRUNCATED' : 'FORMAT_BMAP',
        `Cannot install "${source.name}": the image has ${imageBytes} bytes, its bmap "${located.location}" describes ${located.bmap.imageSize}`,
        {
          hint:
            imageBytes < located.bmap.imageSize
              ? 'the source is incomplete: download it again'
              : 'the bmap belongs to another image',
        },
      )
    }
    if (plan.image.size !== undefined && imageBytes < plan.image.size) {
      throw new InputError(
        'SOURCE_TRUNCATED',
        `Cannot install "${source.name}": the image ends at byte ${imageBytes}, its partition table says ${plan.image.size}`,
        { hint: 'the source is incomplete: download it again' },
      )
    }
    x.sourceDigest = await x.p.reader.sourceDigest()
    if (expected !== undefined && x.sourceDigest !== expected) {
      throw new InputError(
        'CHECKSUM_MISMATCH',
        `Cannot install "${source.name}": its SHA-256 is ${x.sourceDigest}, expected ${expected}`,
        { hint: 'the download is corrupt or not the file the digest is for: download it again' },
      )
    }
    if (expected !== undefined) x.opts.onEvent?.('verified', { what: 'source', sha256: x.sourceDigest })
  },

  /**
   * A 512-byte image on a 4Kn disk: each FAT (the ESP) made again with the disk's sector
   * size over its partition, the other partitions checked (sector-conversion.ts). After
   * the source is verified, before the table: a failure here leaves no table. What
   * --verify reads back there is the new volume, not the image's bytes.
   */
  async 'convert-fat'(x) {
    const c = x.p.conversion!
    const done = await convertFilesystems(x.dev, c.plan, c.gpt, signalOpt(x))
    x.converted = done.fat
    x.warnings.push(...done.warnings)
    const overlaps = (w: WrittenItem, r: { offset: number; length: number }) => {
      const length = 'bytes' in w ? w.bytes.length : w.length
      return w.offset < r.offset + r.length && r.offset < w.offset + length
    }
    // An image extent that reaches into a converted partition is no longer on the disk as written.
    x.written = x.written.filter((w) => !done.written.some((r) => overlaps(w, r)))
    x.written.push(...done.written)
    x.convertedBytes = done.written.reduce((n, w) => n + w.length, 0)
    for (const f of done.fat)
      x.opts.onEvent?.('converted', {
        partition: f.partition,
        from: f.from.bytesPerSector,
        to: f.to.bytesPerSector,
        fatBits: f.to.fatBits,
        files: f.files,
      })
  },

  /**
   * The disk's table: the backup entry array at the disk's end now, its header only after
   * the first MiB (a valid backup header beside a zeroed primary is a table that
   * `sgdisk`, firmware and the kernel would restore from).
   */
  async 'finish-table'(x) {
    const { table, layout } = x.p
    const held = x.outcome!.held
    const imageBytes = x.imageBytes!
    const tailLength = Math.min(FIRST_MIB, imageBytes)
    const tail = alignedBytes(tailLength)
    await x.dev.read(imageBytes - tailLength, tail)
    const check = decodeGpt(held, tail, BigInt(imageBytes), layout.sectorSize!)
    if (!check.backupOk) x.warnings.push("the image's backup GPT is damaged (its primary table is used)")
    const fin = patchFirstMiB(held, table!.gpt, layout.gpt)
    const ss = x.dev.sectorSize
    const entries = alignedBytes(fin.backup.length - ss)
    entries.set(fin.backup.subarray(0, fin.backup.length - ss))
    await x.dev.write(fin.backupOffset, entries)
    const header = alignedBytes(ss)
    header.set(fin.backup.subarray(fin.backup.length - ss))
    x.backupHeader = { offset: fin.backupOffset + entries.length, bytes: header }
    x.written.push({ offset: fin.backupOffset, bytes: fin.backup, label: 'the backup GPT' })
    x.firstMiB = fin.firstMiB
  },

  /** The seed volume into the partition placed for it when the install was planned. */
  async 'add-seed'(x) {
    const { source, target, table } = x.p
    const facts: InstallFacts = {
      imageName: source.fileName ?? source.name,
      ...(x.sourceDigest ? { imageSha256: x.sourceDigest } : {}),
      imageBytes: x.imageBytes!,
      targetPath: target.path,
      targetSizeBytes: target.size,
      ...(target.model ? { model: target.model } : {}),
      ...(target.serial ? { serial: target.serial } : {}),
      ...(target.wwn ? { wwn: target.wwn } : {}),
    }
    await x.opts.seed!.write({ placed: table!.seed!, target: x.dev, facts, ...signalOpt(x) })
  },

  /** One sync makes everything else durable; then the first MiB, then the backup header, each synced. */
  async 'write-first-mib'(x) {
    const firstMiB = x.firstMiB ?? x.outcome!.held
    await x.dev.sync()
    checkAbort(x.opts.signal)
    const first = alignedBytes(firstMiB.length)
    first.set(firstMiB)
    await x.dev.write(0, first)
    await x.dev.sync()
    if (x.backupHeader) {
      await x.dev.write(x.backupHeader.offset, x.backupHeader.bytes)
      await x.dev.sync()
    }
    x.written.push({ offset: 0, bytes: firstMiB, label: 'the first MiB' })
  },

  /** --verify: everything written read back from the device and compared. */
  async 'read-back'(x) {
    x.readBackBytes = await readBack(x.dev, x.pool, x.written, {
      ...signalOpt(x),
      onProgress: (done, total) => x.opts.onProgress?.({ stage: 'verify', done, total }),
    })
    x.opts.onEvent?.('verified', { what: 'read-back', bytes: x.readBackBytes })
  },
}

/** Runs the plan's steps on the target; on any failure after the first write, zeroes both ends again. */
export async function executeInstall(
  p: PreparedInstall,
  opts: InstallOptions,
  ctx: { hasher: HashThread; seconds: InstallReport['seconds'] },
): Promise<InstallReport> {
  const { plan, target } = p
  const dev = await TargetDevice.open(target.path, target.sectorSize)
  const x: Execution = {
    p,
    opts,
    dev,
    pool: new SlotPool(SLOT, SLOTS),
    hasher: ctx.hasher,
    end: Math.floor(target.size / target.sectorSize) * target.sectorSize,
    warnings: [...p.warnings],
    zeroing: [],
    zeroedBytes: 0,
    written: [],
  }
  const stepSeconds: Partial<Record<StepName, number>> = {}
  let touched = false
  try {
    opts.onEvent?.('start', {
      source: plan.source.name,
      format: plan.source.format,
      bmap: p.located?.location ?? null,
      target: target.path,
      targetSize: target.size,
      sectorSize: target.sectorSize,
      imageSize: plan.image.size ?? null,
      mode: plan.mode,
      steps: plan.steps,
    })
    for (const step of plan.steps) {
      checkAbort(opts.signal)
      await opts.onStep?.(step)
      opts.onEvent?.('step', { step })
      const t = performance.now()
      touched = true
      await STEPS[step](x)
      const s = (performance.now() - t) / 1000
      stepSeconds[step] = s
      ctx.seconds[STAGE_OF[step]] += s
    }
  } catch (e) {
    throw touched ? await zeroEndsAfter(x, e) : e
  } finally {
    await dev.close()
  }
  const outcome = x.outcome!
  const firstMiBLength = (x.firstMiB ?? outcome.held).length
  const hashed = p.reader.imageDigest()
  const report: InstallReport = {
    ...plan,
    zeroing: x.zeroing,
    dryRun: false,
    digests: {
      ...(x.sourceDigest ? { source: x.sourceDigest } : {}),
      sourceVerified: p.expected !== undefined,
      ...(hashed ? { image: hashed } : plan.source.format === 'raw' && x.sourceDigest ? { image: x.sourceDigest } : {}),
    },
    bytes: {
      read: p.reader.bytesRead(),
      image: x.imageBytes!,
      written: outcome.bytesWritten + firstMiBLength + (x.convertedBytes ?? 0),
      skipped: outcome.bytesSkipped,
      zeroed: x.zeroedBytes,
    },
    ...(plan.mode === 'bmap'
      ? {
          ranges: {
            verified: outcome.rangesVerified,
            streamed: outcome.rangesStreamed,
            ...(outcome.rangesUnverified > 0 ? { unverified: outcome.rangesUnverified } : {}),
          },
        }
      : {}),
    ...(plan.sectorConversion ? { sectorConversion: { ...plan.sectorConversion, converted: x.converted ?? [] } } : {}),
    ...(x.readBackBytes !== undefined ? { readBack: { bytes: x.readBackBytes } } : {}),
    ...(p.resumes.count > 0 ? { resumes: { ...p.resumes, at: [...p.resumes.at] } } : {}),
    seconds: ctx.seconds,
    stepSeconds: round(stepSeconds),
    warnings: x.warnings,
  }
  if (target.kind === 'block' && target.partitionScan !== false) {
    // The kernel still lists the old partitions: ask it to read the new table (udev
    // usually does this on close too). Best effort: the disk itself is complete.
    await run(['blockdev', '--rereadpt', target.path], signalOpt(x)).catch((e: unknown) => {
      report.warnings.push(
        `the kernel did not re-read the partition table (${(e as Error).message.split('\n')[0]}): run \`partprobe ${target.path}\` or reboot before using its partitions`,
      )
    })
  }
  return report
}

/**
 * After a failure: zeroes the target's first and last MiB (the primary and the backup
 * table) and syncs, and says so in the error, which keeps its code. An interrupt becomes
 * INTERRUPTED whatever the step failed with.
 */
async function zeroEndsAfter(x: Execution, e: unknown): Promise<unknown> {
  const err =
    x.opts.signal?.aborted && !(e instanceof InterruptedError)
      ? new InterruptedError(`Interrupted: ${(e as Error)?.message ?? String(e)}`, { cause: e })
      : e
  const tail = Math.max(0, x.end - FIRST_MIB)
  const failed: string[] = []
  // Each end on its own: a device that fails writes at one end may still take the other.
  for (const [offset, length, what] of [
    [0, Math.min(FIRST_MIB, x.end), 'first'],
    [tail, x.end - tail, 'last'],
  ] as const) {
    try {
      await x.dev.writeZeros(offset, length)
    } catch (z) {
      failed.push(`zeroing its ${what} MiB failed (${(z as Error).message})`)
    }
  }
  try {
    await x.dev.sync()
  } catch (z) {
    failed.push(`the sync after zeroing failed (${(z as Error).message})`)
  }
  const note =
    failed.length === 0
      ? `the first and last MiB of "${x.dev.path}" are zeroed, so it cannot boot a partial image`
      : `"${x.dev.path}": ${failed.join('; ')}: it may still hold a partition table`
  if (!(err instanceof HwimageError)) return withContext(note, err)
  Object.defineProperty(err, 'message', {
    value: `${err.message}; ${note}`,
    enumerable: false,
    configurable: true,
    writable: true,
  })
  return err
}

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw new InterruptedError('Interrupted before the partition table was written')
}

const signalOpt = (x: Execution): { signal?: AbortSignal } => (x.opts.signal ? { signal: x.opts.signal } : {})
const round = <T extends Record<string, number | undefined>>(o: T): T =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round((v ?? 0) * 1000) / 1000])) as T
