// The fast path installer: an image (file, URL or stdin; raw, zstd, xz, gzip or qcow2) onto
// a disk or an image file, verified, never leaving a disk that can boot half an image.
//
// Order of work (docs/install.md has the contract):
//  1. plan (prepare-install.ts): the target found and checked (busy, the source itself,
//     its signatures), the source opened (format, bmap, expected digest), the image's first
//     MiB read and checked (a disk image? its table, sector size, size against the target),
//     the table made for the disk and the seed placed. Nothing is written; the plan is
//     frozen. Any refusal stops here — a dry run prints the plan, then stops the same way;
//  2. confirm: a block device with any signature needs --yes or a yes on the TTY;
//  3. execute (install-steps.ts), step by step: zero the ends → zero the span (no bmap) →
//     write the image, first MiB held back → check the source → finish the table → add
//     the seed → write the first MiB → read back. Any failure after the first write zeroes
//     both ends again before the error is reported.

import { performance } from 'node:perf_hooks'
import { HwimageError, InterruptedError } from '../errors.js'
import { HashThread } from '../io/hash-thread.js'
import { describeSignature } from '../tools/wipefs.js'
import type { InstallOptions } from './install-options.js'
import type { InstallPlan, InstallReport } from './install-report.js'
import { executeInstall } from './install-steps.js'
import { prepareInstall } from './prepare-install.js'

export type { InstallFacts, InstallOptions, PlacedPartition, SeedStep } from './install-options.js'
export { VERIFY_LIMIT } from './install-steps.js'

const refusedPlans = new WeakMap<object, InstallReport>()

/** The dry-run plan a refusal was found in (the CLI prints it before the error), if any. */
export function planOfRefusal(err: unknown): InstallReport | undefined {
  return typeof err === 'object' && err !== null ? refusedPlans.get(err) : undefined
}

/**
 * Installs an image; returns the report. With dryRun, returns the plan as a report, or
 * throws the error the real install would have stopped with (planOfRefusal() gives the plan).
 */
export async function install(opts: InstallOptions): Promise<InstallReport> {
  const t0 = performance.now()
  // `opts.signal` is the user's (an interrupt: exit 130); `teardown` also stops downloads,
  // stdin and decompressors when the install ends for any reason, so nothing lingers.
  const teardown = new AbortController()
  const onUserAbort = () => teardown.abort()
  opts.signal?.addEventListener('abort', onUserAbort, { once: true })
  // One hashing thread for the bmap ranges and a seekable .zst's own digest, started first:
  // it takes ~40 ms of CPU to start, better spent while this thread checks the target.
  const hasher = new HashThread()
  try {
    const p = await prepareInstall(opts, { teardown: teardown.signal, hasher })
    try {
      const seconds = { prepare: 0, zero: 0, write: 0, sync: 0, finish: 0, verify: 0, total: 0 }
      if (opts.dryRun) {
        seconds.prepare = seconds.total = (performance.now() - t0) / 1000
        const report: InstallReport = {
          ...p.plan,
          dryRun: true,
          digests: { sourceVerified: false },
          bytes: { read: 0, image: 0, written: 0, skipped: 0, zeroed: 0 },
          seconds: round(seconds),
          warnings: [...p.warnings],
        }
        if (p.refusals[0]) {
          refusedPlans.set(p.refusals[0], report)
          throw p.refusals[0]
        }
        return report
      }
      await confirmOverwrite(opts, p.plan)
      seconds.prepare = (performance.now() - t0) / 1000
      const report = await executeInstall(p, opts, { hasher, seconds })
      seconds.total = (performance.now() - t0) / 1000
      report.seconds = round(seconds)
      opts.onEvent?.('done', { seconds: report.seconds.total, written: report.bytes.written })
      return report
    } finally {
      await p.close()
    }
  } catch (e) {
    if (opts.signal?.aborted && !(e instanceof InterruptedError))
      throw new InterruptedError(`Interrupted: ${(e as Error)?.message ?? String(e)}`, { cause: e })
    throw e
  } finally {
    teardown.abort()
    opts.signal?.removeEventListener('abort', onUserAbort)
    await hasher.close()
  }
}

/** A block device holding a partition table or any other signature is overwritten only with --yes or a yes from the user. */
async function confirmOverwrite(opts: InstallOptions, plan: InstallPlan): Promise<void> {
  const t = plan.target
  if (t.kind !== 'block' || opts.yes || (!t.existingTable && t.signatures.length === 0)) return
  const holds = t.existingTable
    ? `a ${t.existingTable} partition table`
    : t.signatures.map(describeSignature).join(', ')
  const question = `"${t.path}" (${gib(t.size)}${t.model ? `, ${t.model}` : ''}) holds ${holds}. Overwrite it?`
  if (opts.confirm && (await opts.confirm(question))) return
  throw new HwimageError('CONFIRMATION_REQUIRED', `Cannot install onto "${t.path}": it holds ${holds}`, {
    hint: 'check it is the right disk (--dry-run shows the plan), then pass --yes to overwrite it',
  })
}

const gib = (n: number): string => `${(n / 2 ** 30).toFixed(2)} GiB`
const round = <T extends Record<string, number>>(o: T): T =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v * 1000) / 1000])) as T
