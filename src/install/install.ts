// The fast path installer: an image (file, URL or stdin; raw, zstd, xz, gzip or qcow2) onto
// a disk or an image file, verified, never leaving a disk that can boot half an image.
//
// Order of work (docs/install.md has the contract):
//  1. find and inspect the target, refuse it if busy; open the source, detect the format,
//     find the bmap and the expected digest; read the image's first MiB and check it
//     (partition table, sector size, image size against the bmap and the target);
//  2. zero the target's first and last MiB and sync (no old primary or backup GPT survives);
//     without a bmap, zero the image's span with a guarantee;
//  3. write the image (bmap ranges verified before writing, or non-zero blocks), the first
//     MiB held back; check the source's digest;
//  4. move the backup GPT to the end of the disk, [seam: add a partition, e.g. the seed],
//     sync (everything but the first MiB is then on the disk), write the first MiB
//     (patched with the new primary GPT) last, sync;
//  5. with --verify, read everything back.
// Any failure after step 2 zeroes the first MiB again before the error is reported.

import { performance } from 'node:perf_hooks'
import type { Readable } from 'node:stream'
import type { Gpt } from '../disk/gpt.js'
import { decodeGpt } from '../disk/gpt.js'
import { HwimageError, InputError, InterruptedError, UsageError, withContext } from '../errors.js'
import { alignedBytes, SlotPool } from '../io/aligned-memory.js'
import { openByteSource } from '../io/byte-source.js'
import type { HttpOptions } from '../io/http-source.js'
import { HashThread } from '../io/hash-thread.js'
import { HashingReader } from '../io/hashing-reader.js'
import type { ImageReader } from '../io/image-reader.js'
import { PrefixedReader } from '../io/prefixed-reader.js'
import { TargetDevice } from '../io/target-device.js'
import { zeroRange } from '../io/zero-range.js'
import { run } from '../tools/run.js'
import { parseSha256Hex, parseSha256Sums, pickSha256 } from './checksums.js'
import { detectFormat, MAGIC_BYTES } from './detect-format.js'
import { listDisks, selectDisk, type DiskHints } from './disk-hints.js'
import { patchFirstMiB, resizeForDisk } from './gpt-finish.js'
import { assertSectorSizes, FIRST_MIB, readImageLayout } from './image-layout.js'
import type { InstallPlan, InstallReport } from './install-report.js'
import { locateBmap } from './locate-bmap.js'
import { bmapRanges, describePlan, type Stage } from './install-plan.js'
import { openImage } from './open-image.js'
import { readBack, type WrittenItem } from './read-back.js'
import { inspectTarget, readExistingTable, type TargetInfo } from './target-info.js'
import { assertNotBusy, findBusy } from './target-safety.js'
import { writeImage } from './write-image.js'

/**
 * The seam for the seed partition (issue 4): called after the table was resized for the
 * disk and the image is on it, before the first MiB is written. It may write into the
 * target and returns the table to write (e.g. with a partition added at the end).
 */
export type BeforeFirstMiB = (ctx: { gpt: Gpt; target: TargetDevice; signal?: AbortSignal; facts?: InstallFacts }) => Promise<Gpt>

/** What the seam is told about the install (the seed's hwimage.json records it: nothing secret). */
export interface InstallFacts {
  /** The source's file name (or URL), and the SHA-256 of its bytes as read, if computed. */
  imageName: string
  imageSha256?: string
  imageBytes: number
  targetPath: string
  targetSizeBytes: number
  model?: string
  serial?: string
  wwn?: string
}

/** What to install where. */
export interface InstallOptions {
  source: string
  /** The target path (--disk); or select by hints. */
  disk?: string
  diskHints?: DiskHints
  /** A bmap path or URL; false: use none; undefined: look beside the source. */
  bmap?: string | false
  sha256?: string
  sha256Url?: string
  /** Also compute the uncompressed image's SHA-256 (a full pass over the image). */
  imageDigest?: boolean
  verify?: boolean
  dryRun?: boolean
  /** Overwrite a block device that holds a partition table without asking. */
  yes?: boolean
  /** Asks the user (TTY) whether to overwrite; absent: refuse without --yes. */
  confirm?: (question: string) => Promise<boolean>
  beforeFirstMiB?: BeforeFirstMiB
  stdin?: Readable
  http?: Omit<HttpOptions, 'signal'>
  /** Spool directory for zstd/xz (default /dev/shm or the temp dir); null: decompress through a pipe. */
  spoolDir?: string | null
  signal?: AbortSignal
  onEvent?: (name: string, fields: Record<string, unknown>) => void
  onProgress?: (p: { stage: string; done: number; total?: number }) => void
}

/** Ranges up to this size are verified before they are written (the image builder splits ranges at 32 MiB). */
export const VERIFY_LIMIT = 64 << 20
const SLOT = 4 << 20
const SLOTS = VERIFY_LIMIT / SLOT + 8
const ZERO_BLOCK = 4096

/** Installs an image; returns the report (or, with dryRun, the plan as a report). */
export async function install(opts: InstallOptions): Promise<InstallReport> {
  // `opts.signal` is the user's (an interrupt: exit 130); `teardown` also stops downloads,
  // stdin and decompressors when the install ends for any reason, so nothing lingers.
  const teardown = new AbortController()
  const onUserAbort = () => teardown.abort()
  opts.signal?.addEventListener('abort', onUserAbort, { once: true })
  // One hashing thread for the bmap ranges and a seekable .zst's own digest, started first:
  // it takes ~40 ms of CPU to start, better spent while this thread checks the target.
  const hasher = new HashThread()
  try {
    return await installWith(opts, teardown.signal, hasher)
  } catch (e) {
    if (opts.signal?.aborted && !(e instanceof InterruptedError)) throw new InterruptedError(`Interrupted: ${(e as Error)?.message ?? String(e)}`, { cause: e })
    throw e
  } finally {
    teardown.abort()
    opts.signal?.removeEventListener('abort', onUserAbort)
    await hasher.close()
  }
}

async function installWith(opts: InstallOptions, teardown: AbortSignal, hasher: HashThread): Promise<InstallReport> {
  const t0 = performance.now()
  const signal = opts.signal
  const http: HttpOptions = { ...opts.http, signal: teardown }
  const warnings: string[] = []
  const seconds = { prepare: 0, zero: 0, write: 0, sync: 0, finish: 0, verify: 0, total: 0 }
  let mark = t0
  const lap = (stage: Stage): void => {
    const now = performance.now()
    seconds[stage] += (now - mark) / 1000
    mark = now
  }
  if (opts.sha256 && opts.sha256Url) throw new UsageError('Cannot use both --sha256 and --sha256-url')

  // 1. Target, source, bmap, digest, first MiB.
  const target = await resolveTarget(opts, signal)
  const busy = await findBusy(target)
  if (!opts.dryRun) assertNotBusy(target, busy)
  if (target.kind === 'block' && target.isPartition) {
    throw new HwimageError('TARGET_INVALID', `Cannot install onto "${target.path}": it is a partition; a disk image goes onto a whole disk`, { hint: 'give the disk itself, e.g. /dev/sdb rather than /dev/sdb1' })
  }
  const source = await openByteSource(opts.source, { ...http, ...(opts.stdin ? { stdin: opts.stdin } : {}) })
  let reader: ImageReader | undefined
  try {
    const format = detectFormat(await source.head(MAGIC_BYTES))
    const located = await locateBmap(opts.bmap, source.name, http)
    const expected = await expectedDigest(opts, source.fileName, http)
    // With a bmap only the first MiB and the mapped ranges are read (all of it for --image-digest).
    const wanted = located && !opts.imageDigest ? [{ offset: 0, length: FIRST_MIB }, ...bmapRanges(located.bmap)] : undefined
    const opened = await openImage(source, format, { hashSource: expected !== undefined || format !== 'raw', signal: teardown, spoolDir: opts.spoolDir, hasher, ...(wanted ? { wanted } : {}) })
    const hashing = opts.imageDigest ? new HashingReader(opened.reader) : undefined
    reader = abortable(hashing ?? opened.reader, signal)
    const head = new Uint8Array(FIRST_MIB)
    const headBytes = await reader.read(0, head)
    if (headBytes === 0) throw new InputError('SOURCE_TRUNCATED', `Cannot install "${source.name}": the image is empty`)
    const layout = readImageLayout(head.subarray(0, headBytes))
    reader = new PrefixedReader(reader, head.subarray(0, headBytes))
    let existingTable: string | undefined
    if (target.kind === 'block') {
      try {
        existingTable = await readExistingTable(target)
      } catch (e) {
        // A dry run on a disk we may not even read (the running system's) still shows the plan.
        if (!opts.dryRun) throw e
        warnings.push(`cannot read "${target.path}": ${(e as Error).message}`)
      }
    }
    const plan = describePlan({ source, format, located, layout, target, busy, reader, headBytes, expected, existingTable })
    for (const p of layout.problems) warnings.push(`image partition table: ${p.message}`)

    assertSectorSizes(layout, target.sectorSize, target.path)
    const imageSize = plan.image.size
    if (imageSize !== undefined && imageSize > target.size) {
      throw new InputError('TARGET_TOO_SMALL', `Cannot install onto "${target.path}": the image needs ${imageSize} bytes (${gib(imageSize)}), the target has ${target.size} bytes (${gib(target.size)})`, {
        hint: 'use a larger disk',
      })
    }
    const resized = layout.gpt ? resizeForDisk(layout.gpt, target.size) : undefined
    if (opts.beforeFirstMiB && !resized) throw new InputError('FORMAT_GPT', `Cannot add a partition after "${source.name}": the image has no GPT`, { hint: 'install without --seed and attach the seed as a second disk (hwimage seed)' })
    if (resized) {
      const enc = patchFirstMiB(head, resized)
      plan.gptResize = { diskSectors: String(resized.diskSectors), lastUsableLba: String(resized.lastUsableLba), backupOffset: enc.backupOffset }
    }
    if (opts.dryRun) return { ...plan, dryRun: true, digests: { sourceVerified: false }, bytes: { read: 0, image: 0, written: 0, skipped: 0, zeroed: 0 }, seconds, warnings }
    await confirmOverwrite(opts, plan)
    lap('prepare')

    // 2. Zero the first and last MiB, then (without a bmap) the image's span.
    const dev = await TargetDevice.open(target.path, target.sectorSize)
    let firstMiBWritten = false
    const pool = new SlotPool(SLOT, SLOTS)
    try {
      opts.onEvent?.('start', { source: source.name, format, bmap: located?.location ?? null, target: target.path, targetSize: target.size, sectorSize: target.sectorSize, imageSize: imageSize ?? null, mode: plan.mode })
      const targetEnd = floorTo(target.size, target.sectorSize)
      const lastStart = Math.max(0, targetEnd - FIRST_MIB)
      await dev.writeZeros(0, Math.min(FIRST_MIB, targetEnd))
      await dev.writeZeros(lastStart, targetEnd - lastStart)
      await dev.sync()
      let zeroed = Math.min(FIRST_MIB, targetEnd) + (targetEnd - lastStart)
      for (const z of plan.zeroing) {
        if (z.method === 'explicit') continue
        opts.onProgress?.({ stage: 'zero', done: 0, total: z.length })
        z.method = await zeroRange(dev, z.offset, z.length, { signal })
        zeroed += z.length
        opts.onProgress?.({ stage: 'zero', done: z.length, total: z.length })
      }
      lap('zero')

      // 3. The image, first MiB held back; then the whole-source digest.
      const outcome = await writeImage(reader, dev, pool, {
        mode: plan.mode,
        ranges: located ? bmapRanges(located.bmap) : undefined,
        imageSize,
        holdBack: Math.min(FIRST_MIB, headBytes),
        targetSize: targetEnd,
        verifyLimit: VERIFY_LIMIT,
        blockSize: ZERO_BLOCK,
        recordExtents: opts.verify === true,
      }, { signal, hasher, onProgress: (p) => opts.onProgress?.({ stage: 'write', ...p }) })
      const imageBytes = await reader.finish()
      if (located && imageBytes !== located.bmap.imageSize) {
        throw new InputError(imageBytes < located.bmap.imageSize ? 'SOURCE_TRUNCATED' : 'FORMAT_BMAP', `Cannot install "${source.name}": the image has ${imageBytes} bytes, its bmap "${located.location}" describes ${located.bmap.imageSize}`, {
          hint: imageBytes < located.bmap.imageSize ? 'the source is incomplete: download it again' : 'the bmap belongs to another image',
        })
      }
      if (imageSize !== undefined && imageBytes < imageSize) {
        throw new InputError('SOURCE_TRUNCATED', `Cannot install "${source.name}": the image ends at byte ${imageBytes}, its partition table says ${imageSize}`, { hint: 'the source is incomplete: download it again' })
      }
      const sourceDigest = await opened.sourceDigest()
      if (expected !== undefined && sourceDigest !== expected) {
        throw new InputError('CHECKSUM_MISMATCH', `Cannot install "${source.name}": its SHA-256 is ${sourceDigest}, expected ${expected}`, { hint: 'the download is corrupt or not the file the digest is for: download it again' })
      }
      if (expected !== undefined) opts.onEvent?.('verified', { what: 'source', sha256: sourceDigest })
      if (outcome.rangesVerified > 0) opts.onEvent?.('verified', { what: 'bmap-ranges', ranges: outcome.rangesVerified })
      lap('write')

      // 4. The table for the real disk, the seam; one sync makes all of it and the image
      //    durable; then the first MiB, last.
      checkAbort(signal)
      const written: WrittenItem[] = [...outcome.extents]
      let firstMiB = outcome.held
      if (layout.gpt && resized) {
        const tailLength = Math.min(FIRST_MIB, imageBytes)
        const tail = alignedBytes(tailLength)
        await dev.read(imageBytes - tailLength, tail)
        const check = decodeGpt(outcome.held, tail, BigInt(imageBytes), layout.sectorSize!)
        if (!check.backupOk) warnings.push("the image's backup GPT is damaged (its primary table is used)")
        const facts: InstallFacts = {
          imageName: source.fileName ?? source.name,
          ...(sourceDigest ? { imageSha256: sourceDigest } : {}),
          imageBytes,
          targetPath: target.path,
          targetSizeBytes: target.size,
          ...(target.model ? { model: target.model } : {}),
          ...(target.serial ? { serial: target.serial } : {}),
          ...(target.wwn ? { wwn: target.wwn } : {}),
        }
        const gpt = opts.beforeFirstMiB ? await opts.beforeFirstMiB({ gpt: resized, target: dev, facts, ...(signal ? { signal } : {}) }) : resized
        const fin = patchFirstMiB(outcome.held, gpt)
        const backup = alignedBytes(fin.backup.length)
        backup.set(fin.backup)
        await dev.write(fin.backupOffset, backup)
        written.push({ offset: fin.backupOffset, bytes: fin.backup, label: 'the backup GPT' })
        firstMiB = fin.firstMiB
      }
      lap('finish')
      await dev.sync()
      lap('sync')
      checkAbort(signal)
      const first = alignedBytes(firstMiB.length)
      first.set(firstMiB)
      firstMiBWritten = true
      await dev.write(0, first)
      await dev.sync()
      written.push({ offset: 0, bytes: firstMiB, label: 'the first MiB' })
      lap('finish')

      // 5. Read-back.
      let readBackBytes: number | undefined
      if (opts.verify) {
        readBackBytes = await readBack(dev, pool, written, { signal, onProgress: (done, total) => opts.onProgress?.({ stage: 'verify', done, total }) })
        opts.onEvent?.('verified', { what: 'read-back', bytes: readBackBytes })
        lap('verify')
      }
      seconds.total = (performance.now() - t0) / 1000
      const report: InstallReport = {
        ...plan,
        dryRun: false,
        digests: { ...(sourceDigest ? { source: sourceDigest } : {}), sourceVerified: expected !== undefined, ...(hashing?.digest ? { image: hashing.digest } : format === 'raw' && sourceDigest ? { image: sourceDigest } : {}) },
        bytes: { read: opened.bytesRead(), image: imageBytes, written: outcome.bytesWritten + firstMiB.length, skipped: outcome.bytesSkipped, zeroed },
        ...(plan.mode === 'bmap' ? { ranges: { verified: outcome.rangesVerified, streamed: outcome.rangesStreamed } } : {}),
        ...(readBackBytes !== undefined ? { readBack: { bytes: readBackBytes } } : {}),
        seconds: round(seconds),
        warnings,
      }
      await dev.close()
      if (target.kind === 'block' && target.partitionScan !== false) {
        // The kernel still lists the old partitions: ask it to read the new table (udev
        // usually does this on close too). Best effort: the disk itself is complete.
        await run(['blockdev', '--rereadpt', target.path], { signal }).catch((e: unknown) => {
          report.warnings.push(`the kernel did not re-read the partition table (${(e as Error).message.split('\n')[0]}): run \`partprobe ${target.path}\` or reboot before using its partitions`)
        })
      }
      opts.onEvent?.('done', { seconds: report.seconds.total, written: report.bytes.written })
      return report
    } catch (e) {
      throw await zeroFirstMiBAfter(dev, e, firstMiBWritten, signal)
    } finally {
      await dev.close()
    }
  } finally {
    await reader?.close()
    await source.close()
  }
}

/**
 * After a failure: zeroes the first MiB again (it was zeroed first and held back; this also
 * covers a failed final write) and says so in the error, which keeps its code.
 */
async function zeroFirstMiBAfter(dev: TargetDevice, e: unknown, firstMiBWritten: boolean, signal?: AbortSignal): Promise<unknown> {
  const err = signal?.aborted && !(e instanceof InterruptedError) ? new InterruptedError(`Interrupted: ${(e as Error)?.message ?? String(e)}`, { cause: e }) : e
  let note: string
  try {
    await dev.writeZeros(0, FIRST_MIB)
    await dev.sync()
    note = `the first MiB of "${dev.path}" is zeroed, so it cannot boot a partial image`
  } catch (z) {
    note = `zeroing the first MiB of "${dev.path}" again failed (${(z as Error).message}); ${firstMiBWritten ? 'it may hold a partition table' : 'it was zeroed before writing began'}`
  }
  if (!(err instanceof HwimageError)) return withContext(note, err)
  Object.defineProperty(err, 'message', { value: `${err.message}; ${note}`, enumerable: false, configurable: true, writable: true })
  return err
}

async function resolveTarget(opts: InstallOptions, signal?: AbortSignal): Promise<TargetInfo> {
  if (opts.disk && opts.diskHints) throw new UsageError('Cannot use both --disk and --disk-hint')
  if (opts.disk) return await inspectTarget(opts.disk)
  if (opts.diskHints) return await inspectTarget(selectDisk(await listDisks(signal), opts.diskHints).path)
  throw new UsageError('Cannot install: no target given', { hint: 'name it with --disk /dev/sdX (or an image file), or select it with --disk-hint serial=…' })
}

async function expectedDigest(opts: InstallOptions, fileName: string | undefined, http: HttpOptions): Promise<string | undefined> {
  if (opts.sha256) return parseSha256Hex(opts.sha256)
  if (!opts.sha256Url) return undefined
  if (!fileName) throw new UsageError('Cannot use --sha256-url with stdin: the source has no file name to look up', { hint: 'pass --sha256 HEX' })
  const text = /^https?:\/\//i.test(opts.sha256Url) ? await (await import('../io/http-source.js')).fetchText(opts.sha256Url, http) : await import('node:fs/promises').then((f) => f.readFile(opts.sha256Url!, 'utf8'))
  return pickSha256(parseSha256Sums(text ?? ''), fileName, opts.sha256Url)
}

async function confirmOverwrite(opts: InstallOptions, plan: InstallPlan): Promise<void> {
  if (plan.target.kind !== 'block' || !plan.target.existingTable || opts.yes) return
  const question = `"${plan.target.path}" (${gib(plan.target.size)}${plan.target.model ? `, ${plan.target.model}` : ''}) holds a ${plan.target.existingTable} partition table. Overwrite it?`
  if (opts.confirm && (await opts.confirm(question))) return
  throw new HwimageError('CONFIRMATION_REQUIRED', `Cannot install onto "${plan.target.path}": it holds a ${plan.target.existingTable} partition table`, {
    hint: 'check it is the right disk (--dry-run shows the plan), then pass --yes to overwrite it',
  })
}

/** A reader whose pending reads fail with InterruptedError when `signal` aborts (a source blocked on stdin never would). */
function abortable(inner: ImageReader, signal?: AbortSignal): ImageReader {
  if (!signal) return inner
  const aborted = new Promise<never>((_, reject) => {
    const fail = () => reject(new InterruptedError('Interrupted while reading the image'))
    if (signal.aborted) fail()
    else signal.addEventListener('abort', fail, { once: true })
  })
  aborted.catch(() => {})
  return {
    get knownSize() {
      return inner.knownSize
    },
    read: (o, d) => Promise.race([inner.read(o, d), aborted]),
    finish: () => Promise.race([inner.finish(), aborted]),
    close: () => inner.close(),
  }
}

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw new InterruptedError('Interrupted before the partition table was written')
}

const floorTo = (n: number, to: number): number => Math.floor(n / to) * to
const gib = (n: number): string => `${(n / 2 ** 30).toFixed(2)} GiB`
const round = <T extends Record<string, number>>(o: T): T => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v * 1000) / 1000])) as T
