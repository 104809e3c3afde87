// Preparing an install: everything looked at, decided and checked before the first write.
// The result is a frozen plan (what --dry-run prints and --json returns) and the open
// handles the executor reads from. Nothing here writes to the target.
//
// Order: the target (busy? the source itself? what signatures does it hold?) → the source
// (format, bmap, expected digest) → the image's first MiB (a disk image? its partition
// table, sector size, size) → the table made for the disk, the seed placed → the plan.
// A problem with the target or the fit (busy, the source itself, too small, no room for
// the seed, another sector size) is a *refusal*: the real install stops on it before
// writing; a dry run shows the plan and then stops on it the same way.

import { promises as fsp } from 'node:fs'
import { FormatError, HwimageError, InputError, UsageError } from '../errors.js'
import { openByteSource, type ByteSource } from '../io/byte-source.js'
import type { HashThread } from '../io/hash-thread.js'
import type { HttpOptions } from '../io/http-source.js'
import { openImageStack, type ImageStack } from '../io/image-stack.js'
import { listSignatures, type Signature } from '../tools/wipefs.js'
import type { Gpt } from '../disk/gpt.js'
import { parseSha256Hex, parseSha256Sums, pickSha256 } from './checksums.js'
import { detectFormat, MAGIC_BYTES, notADiskImage } from './detect-format.js'
import { listDisks, selectDisk } from './disk-hints.js'
import { encodeGpt } from '../disk/gpt.js'
import { resizeForDisk } from './gpt-finish.js'
import { convertsSectors, type PlannedConversion, planSectorConversion } from './sector-conversion.js'
import { assertSectorSizes, FIRST_MIB, readImageLayout, type ImageLayout } from './image-layout.js'
import type { InstallOptions, PlacedPartition } from './install-options.js'
import { bmapRanges, describePlan, imageSizeOf } from './install-plan.js'
import type { InstallPlan } from './install-report.js'
import { locateBmap, type LocatedBmap } from './locate-bmap.js'
import { inspectTarget, readExistingTable, type TargetInfo } from './target-info.js'
import { assertNotBusy, findBusy, findSourceConflict } from './target-safety.js'

/** A planned install: the frozen plan and what the executor reads from. */
export interface PreparedInstall {
  readonly plan: Readonly<InstallPlan>
  /** Why the real install refuses, first reason first (empty: it may go ahead). */
  readonly refusals: readonly HwimageError[]
  readonly target: TargetInfo
  readonly source: ByteSource
  /** The image's whole reader stack (io/image-stack.ts), its first MiB already read (served from memory); its source digest, image digest (--image-digest) and bytes read. */
  readonly reader: ImageStack
  readonly layout: ImageLayout
  /** The image's first bytes (the first MiB, or the whole image when shorter). */
  readonly head: Uint8Array
  readonly located: LocatedBmap | undefined
  readonly expected: string | undefined
  /** The table to write: the image's, sized for the disk (in its LBAs), with the seed's partition; and the seed's place. */
  readonly table: { gpt: Gpt; seed?: PlacedPartition } | undefined
  /** A 512-byte image onto a 4Kn disk: the table in the disk's LBAs before resizing, and what the convert-fat step does. */
  readonly conversion: PlannedConversion | undefined
  /** Resumes of a download so far (it goes on counting while the executor reads). */
  readonly resumes: { count: number; bytesRerequested: number; at: number[] }
  /** Warnings so far (the executor adds its own). */
  readonly warnings: readonly string[]
  /** Closes the reader and the source. */
  close(): Promise<void>
}

/** What prepareInstall() shares with the executor. */
export interface PrepareContext {
  /** Stops downloads, stdin and decompressors when the install ends for any reason. */
  teardown: AbortSignal
  hasher: HashThread
}

/** Looks at the target and the source and plans the install; writes nothing. */
export async function prepareInstall(opts: InstallOptions, ctx: PrepareContext): Promise<PreparedInstall> {
  if (opts.sha256 && opts.sha256Url) throw new UsageError('Cannot use both --sha256 and --sha256-url')
  const resumes = { count: 0, bytesRerequested: 0, at: [] as number[] }
  const http: HttpOptions = {
    ...opts.http,
    signal: ctx.teardown,
    onResume: (r) => {
      resumes.count++
      resumes.bytesRerequested += r.bytesRerequested
      resumes.at.push(r.at)
      opts.onEvent?.('resume', { at: r.at, attempt: r.attempt, bytesRerequested: r.bytesRerequested, reason: r.reason })
    },
  }
  const warnings: string[] = []
  const refusals: HwimageError[] = []
  /** A refusal stops the real install at once (before the source is even opened); a dry run collects it. */
  const refuse = (e: HwimageError): void => {
    if (!opts.dryRun) throw e
    refusals.push(e)
  }

  // The target.
  const target = await resolveTarget(opts, opts.signal)
  if (target.kind === 'block' && target.isPartition) {
    throw new InputError(
      'TARGET_INVALID',
      `Cannot install onto "${target.path}": it is a partition; a disk image goes onto a whole disk`,
      { hint: 'give the disk itself, e.g. /dev/sdb rather than /dev/sdb1' },
    )
  }
  const busy = await findBusy(target)
  try {
    assertNotBusy(target, busy)
  } catch (e) {
    refuse(e as HwimageError)
  }
  const conflict = isLocalPath(opts.source) ? await findSourceConflict(target, opts.source) : undefined
  if (conflict) {
    refuse(
      new InputError(
        'TARGET_INVALID',
        `Cannot install "${opts.source}" onto "${target.path}": ${conflict}; writing the target would destroy the image while it is read`,
        {
          hint: 'copy the image to another disk first, or choose another target',
        },
      ),
    )
  }
  // wipefs is a process of its own: it runs while the source is opened and its first MiB read.
  const probing = probeTarget(target, opts, warnings)
  probing.catch(() => {}) // awaited below; a failure to open the source comes first

  // The source.
  const source = await openByteSource(opts.source, { ...http, ...(opts.stdin ? { stdin: opts.stdin } : {}) })
  let reader: ImageStack | undefined
  try {
    const format = detectFormat(await source.head(MAGIC_BYTES))
    const located = await locateBmap(opts.bmap, source.name, http)
    const expected = await expectedDigest(opts, source.fileName, http)
    // With a bmap only the first MiB and the mapped ranges are read (all of it for --image-digest).
    const wanted =
      located && !opts.imageDigest ? [{ offset: 0, length: FIRST_MIB }, ...bmapRanges(located.bmap)] : undefined
    reader = await openImageStack(source, format, {
      hashSource: expected !== undefined || format !== 'raw',
      imageDigest: opts.imageDigest === true,
      teardown: ctx.teardown,
      ...(opts.signal ? { signal: opts.signal } : {}),
      spoolDir: opts.spoolDir,
      hasher: ctx.hasher,
      ...(wanted ? { wanted } : {}),
    })

    // The image's first MiB (the stack holds it and serves it again).
    const head = await reader.head(FIRST_MIB)
    const headBytes = head.length
    if (headBytes === 0) throw new InputError('SOURCE_TRUNCATED', `Cannot install "${source.name}": the image is empty`)
    if (!opts.raw) {
      const knownSize = reader.knownSize ?? (headBytes < FIRST_MIB ? headBytes : undefined)
      const what = notADiskImage(head, knownSize)
      if (what !== undefined) {
        throw new FormatError(
          'FORMAT_IMAGE',
          `Cannot install "${source.name}": it does not look like a disk image: ${format === 'raw' ? '' : `its ${format} content is `}${what}`,
          {
            hint: 'give a disk image (with a partition table, or a whole-disk file system), or pass --raw to write these bytes anyway',
          },
        )
      }
    }
    const layout = readImageLayout(head)
    for (const p of layout.problems) warnings.push(`image partition table: ${p.message}`)

    // The fit: sector size, size, the table for the disk, the seed.
    /** A check of the fit whose failure is a refusal (collected by a dry run). */
    const fits = (check: () => void): void => {
      try {
        check()
      } catch (e) {
        if (!(e instanceof HwimageError)) throw e
        refuse(e)
      }
    }
    const { existingTable, signatures } = await probing
    const base = {
      source,
      format,
      located,
      layout,
      target,
      busy,
      reader,
      headBytes,
      expected,
      existingTable,
      signatures,
      verify: opts.verify === true,
    }
    const imageSize = imageSizeOf(base)
    // A 512-byte image onto a 4Kn disk is converted (sector-conversion.ts); any other mismatch is refused.
    let converting: PlannedConversion | undefined
    if (convertsSectors(layout, target.sectorSize)) {
      fits(() => {
        converting = planSectorConversion(layout, head, target.path, { uefiOnly: opts.uefiOnly === true })
      })
      if (converting?.refusal) refuse(converting.refusal)
    } else fits(() => assertSectorSizes(layout, target.sectorSize, target.path))
    fits(() => {
      if (imageSize !== undefined && imageSize > target.size) {
        throw new InputError(
          'TARGET_TOO_SMALL',
          `Cannot install onto "${target.path}": the image needs ${imageSize} bytes (${gib(imageSize)}), the target has ${target.size} bytes (${gib(target.size)})`,
          { hint: 'use a larger disk' },
        )
      }
    })
    let table: { gpt: Gpt; seed?: PlacedPartition } | undefined
    let resized: { gpt: Gpt; backupOffset: number } | undefined
    const imageGpt = converting?.gpt ?? (layout.sectorSize === target.sectorSize ? layout.gpt : undefined)
    if (imageGpt) {
      fits(() => {
        const gpt = resizeForDisk(imageGpt, target.size)
        resized = { gpt, backupOffset: Number(encodeGpt(gpt).backupOffset) }
        table = { gpt }
      })
    }
    if (opts.seed) {
      fits(() => {
        if (!layout.gpt)
          throw new InputError('FORMAT_GPT', `Cannot add a partition after "${source.name}": the image has no GPT`, {
            hint: 'install without --seed and attach the seed as a second disk (hwimage seed)',
          })
      })
      if (table) {
        const sized = table.gpt
        fits(() => {
          const seed = opts.seed!.place(sized)
          table = { gpt: seed.gpt, seed }
        })
      }
    }
    const plan = describePlan({
      ...base,
      ...(resized ? { resized } : {}),
      ...(table?.seed ? { seed: table.seed } : {}),
      ...(converting && table ? { conversion: converting.plan } : {}),
    })
    if (refusals[0])
      plan.refused = {
        code: refusals[0].code,
        message: refusals[0].message,
        ...(refusals[0].hint ? { hint: refusals[0].hint } : {}),
      }
    const finalReader = reader
    return {
      plan: deepFreeze(plan),
      refusals,
      target,
      source,
      reader: finalReader,
      layout,
      head,
      located,
      expected,
      table,
      conversion: converting,
      resumes,
      warnings,
      close: async () => {
        await finalReader.close()
        await source.close()
      },
    }
  } catch (e) {
    await reader?.close()
    await source.close()
    throw e
  }
}

/** The partition table and every other signature on the target (read-only). */
async function probeTarget(
  target: TargetInfo,
  opts: InstallOptions,
  warnings: string[],
): Promise<{ existingTable: string | undefined; signatures: Signature[] }> {
  try {
    const existingTable = target.kind === 'block' ? await readExistingTable(target) : undefined
    const signatures = await listSignatures(target.path, opts.signal ? { signal: opts.signal } : {})
    return { existingTable, signatures }
  } catch (e) {
    // A dry run on a disk we may not even read (the running system's) still shows the plan.
    if (!opts.dryRun) throw e
    warnings.push(`cannot read "${target.path}": ${(e as Error).message}`)
    return { existingTable: undefined, signatures: [] }
  }
}

async function resolveTarget(opts: InstallOptions, signal?: AbortSignal): Promise<TargetInfo> {
  if (opts.disk && opts.diskHints) throw new UsageError('Cannot use both --disk and --disk-hint')
  if (opts.disk) return await inspectTarget(opts.disk)
  if (opts.diskHints) return await inspectTarget(selectDisk(await listDisks(signal), opts.diskHints).path)
  throw new UsageError('Cannot install: no target given', {
    hint: 'name it with --disk /dev/sdX (or an image file), or select it with --disk-hint serial=…',
  })
}

async function expectedDigest(
  opts: InstallOptions,
  fileName: string | undefined,
  http: HttpOptions,
): Promise<string | undefined> {
  if (opts.sha256) return parseSha256Hex(opts.sha256)
  if (!opts.sha256Url) return undefined
  if (!fileName)
    throw new UsageError('Cannot use --sha256-url with stdin: the source has no file name to look up', {
      hint: 'pass --sha256 HEX',
    })
  const url = opts.sha256Url
  const text = /^https?:\/\//i.test(url)
    ? await (await import('../io/http-source.js')).fetchText(url, http)
    : await readLocal(url)
  return pickSha256(parseSha256Sums(text ?? ''), fileName, url)
}

async function readLocal(file: string): Promise<string> {
  try {
    return await fsp.readFile(file, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new InputError(
      code === 'ENOENT' ? 'NOT_FOUND' : 'USAGE',
      `Cannot read the checksums file "${file}": ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message}`,
      {
        cause: e,
        hint: 'give the path or URL of a SHA256SUMS file that lists the source, or --sha256 HEX',
      },
    )
  }
}

const isLocalPath = (s: string): boolean => s !== '-' && !/^[a-z][a-z0-9+.-]*:\/\//i.test(s)
const gib = (n: number): string => `${(n / 2 ** 30).toFixed(2)} GiB`

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o)
    for (const v of Object.values(o)) deepFreeze(v)
  }
  return o
}
