// The write loop: image bytes from a reader into aligned slots, checked, then positional
// writes to the target, several in flight, with the image's first MiB held back in memory
// (it is written last, after everything else is on the disk and verified).
//
// Reading runs ahead of checking and writing (a producer filling free slots and handing
// each to the hashing thread, while the consumer writes the ranges whose digests matched):
// the decompressor, the hash and the disk then work at the same time, each on its own
// thread, and the slot pool bounds the memory.
//
// Three modes:
// - bmap: only the mapped ranges are read and written, zeros included (the image builder
//   maps every block that must read as zero). A range up to `verifyLimit` bytes is read
//   whole and its digest (SHA-256, or SHA-1 from an old bmap) checked BEFORE any of it is
//   written; a longer one is written as it streams and checked at its end (the first MiB
//   still keeps the disk unbootable). A range without a digest (bmap 1.x allows that) is
//   written unverified and counted as such.
// - nonzero: no bmap, the image's span on the target was zeroed with a guarantee first, so
//   only blocks with data are written.
// - dense: no bmap and the span could not be zeroed beforehand (size unknown): every block
//   is written.

import { InputError, InterruptedError } from '../errors.js'
import type { SlotPool } from '../io/aligned-memory.js'
import { sha256Hex, threadDigest, type Digest } from '../io/digest.js'
import { HashThread, type HashAlgorithm } from '../io/hash-thread.js'
import type { ImageReader } from '../io/image-reader.js'
import type { TargetDevice } from '../io/target-device.js'
import { nonZeroRuns } from '../io/zero-runs.js'

/** A range of the image to write: a bmap range in bytes. */
export interface ImageRange {
  offset: number
  length: number
  /** Expected digest of the range's bytes (lowercase hex), from the bmap; none: written unverified. */
  checksum?: { algorithm: HashAlgorithm; digest: string }
  /** How to name it in errors: `bmap range 12 (blocks 2048–4095)`. */
  label: string
}

/** Where a written piece went and its digest, for read-back verification. */
export interface WrittenExtent {
  offset: number
  length: number
  sha256: string
}

/** What writeImage() is asked to do. */
export interface WriteJob {
  mode: 'bmap' | 'nonzero' | 'dense'
  /** bmap mode: the ranges, sorted, clamped to the image size. */
  ranges?: ImageRange[]
  /** The image size when known (bmap, GPT, raw file): reading stops there. */
  imageSize?: number
  /** Bytes at the start held back (the first MiB). */
  holdBack: number
  /** The target's size: nothing may be written past it. */
  targetSize: number
  /** Largest range verified before it is written. */
  verifyLimit: number
  /** Zero-detection granularity in nonzero mode. */
  blockSize: number
  /** Keep a digest of every written piece (for --verify). */
  recordExtents: boolean
}

/** What writeImage() did. */
export interface WriteOutcome {
  /** The image's first `holdBack` bytes (zeros where the image has none). */
  held: Uint8Array
  /** Bytes written to the target (without the held-back part). */
  bytesWritten: number
  /** Image bytes looked at and not written (zero blocks, unmapped ranges). */
  bytesSkipped: number
  /** Ranges whose digest matched (bmap mode). */
  rangesVerified: number
  /** Ranges written without a digest to check (bmap 1.x files may leave them out). */
  rangesUnverified: number
  /** Ranges written before their digest could be checked (longer than verifyLimit). */
  rangesStreamed: number
  /** Highest image offset read + 1. */
  imageEnd: number
  extents: WrittenExtent[]
}

/** Progress of the write stage. */
export interface WriteProgress {
  done: number
  total?: number
}

/** Writes with at most `max` in flight; the first failure is thrown by the next submit or by drain(). */
class WriteQueue {
  private readonly inflight = new Set<Promise<void>>()
  private failure: unknown = undefined
  bytes = 0

  constructor(
    private readonly target: TargetDevice,
    private readonly max: number,
  ) {}

  /** Queues a write once there is room; `done` settles when it is on the target. */
  async submit(offset: number, bytes: Uint8Array): Promise<{ done: Promise<void> }> {
    while (this.inflight.size >= this.max) await Promise.race(this.inflight)
    if (this.failure !== undefined) throw this.failure
    const done = this.target.write(offset, bytes).then(() => {
      this.bytes += bytes.length
    })
    const tracked: Promise<void> = done.catch((e: unknown) => {
      this.failure ??= e
    })
    this.inflight.add(tracked)
    void tracked.finally(() => this.inflight.delete(tracked))
    return { done }
  }

  /** Waits for every queued write; throws the first failure. */
  async drain(): Promise<void> {
    await Promise.all(this.inflight)
    if (this.failure !== undefined) throw this.failure
  }
}

/** One filled slot, in image order. */
interface Piece {
  /** Index of its range (bmap mode), or -1. */
  range: number
  offset: number
  slot: Uint8Array
  length: number
  /** The last piece of its range. */
  last: boolean
  /** bmap mode: settles when the hashing thread is done with the slot. */
  hashed?: Promise<void>
}

/** A single-producer, single-consumer queue of pieces; the slot pool bounds its length. */
class PieceQueue {
  private readonly items: Array<Piece | null> = []
  private waiter: (() => void) | undefined
  private failure: unknown = undefined
  stopped = false

  push(p: Piece | null): void {
    this.items.push(p)
    this.waiter?.()
  }

  fail(e: unknown): void {
    this.failure ??= e
    this.waiter?.()
  }

  /** The next piece; null at the end; throws the producer's failure once the pieces before it are taken. */
  async next(): Promise<Piece | null> {
    for (;;) {
      if (this.items.length > 0) return this.items.shift()!
      if (this.failure !== undefined) throw this.failure
      await new Promise<void>((r) => (this.waiter = r))
      this.waiter = undefined
    }
  }
}

const ALGORITHM_NAMES: Record<HashAlgorithm, string> = { sha1: 'SHA-1', sha256: 'SHA-256' }

/** Runs the write loop; on return every write is complete (not yet synced). */
export async function writeImage(
  reader: ImageReader,
  target: TargetDevice,
  pool: SlotPool,
  job: WriteJob,
  opts: {
    signal?: AbortSignal
    onProgress?: (p: WriteProgress) => void
    maxInflight?: number
    hasher?: HashThread
  } = {},
): Promise<WriteOutcome> {
  const queue = new WriteQueue(target, opts.maxInflight ?? 4)
  const held = new Uint8Array(job.holdBack)
  const out: WriteOutcome = {
    held,
    bytesWritten: 0,
    bytesSkipped: 0,
    rangesVerified: 0,
    rangesUnverified: 0,
    rangesStreamed: 0,
    imageEnd: 0,
    extents: [],
  }
  const slotSize = pool.slotSize
  const ranges = job.ranges ?? []
  if (job.mode === 'bmap' && job.verifyLimit > slotSize * (pool.count - 2))
    throw new RangeError('verifyLimit needs more slots than the pool has')

  // bmap mode: every range's digest on the hashing thread (the caller's, or one of its
  // own), its id the range's index; a range without a digest is not hashed.
  const hashing = job.mode === 'bmap' ? (opts.hasher ?? new HashThread()) : undefined
  const digests: Array<Digest | undefined> = []
  const digestOf = (range: number, algorithm: HashAlgorithm): Digest =>
    (digests[range] ??= threadDigest(hashing!, range, algorithm))
  const truncated = (at: number, what: string): InputError =>
    new InputError('SOURCE_TRUNCATED', `Cannot read image byte ${at}: the image ends there, inside ${what}`, {
      hint: 'the source is incomplete, or the bmap belongs to a larger image',
    })

  // Producer: fills slots in image order, as far ahead as free slots allow.
  const pieces = new PieceQueue()
  const produce = async (): Promise<void> => {
    const fill = async (
      range: number,
      offset: number,
      want: number,
      last: boolean,
      exact: string | undefined,
      algorithm?: HashAlgorithm,
    ): Promise<number> => {
      const slot = await pool.acquire()
      if (pieces.stopped) {
        pool.release(slot)
        return -1
      }
      let n: number
      try {
        n = await reader.read(offset, slot.subarray(0, want))
      } catch (e) {
        pool.release(slot)
        throw e
      }
      if (exact !== undefined && n < want) {
        pool.release(slot)
        throw truncated(offset + n, exact)
      }
      const hashed =
        algorithm === undefined || !hashing ? undefined : digestOf(range, algorithm).update(slot.subarray(0, n))
      hashed?.catch(() => {}) // the failure is the digest's
      pieces.push({ range, offset, slot, length: n, last: last || n < want, ...(hashed ? { hashed } : {}) })
      return n
    }
    if (job.mode === 'bmap') {
      for (let i = 0; i < ranges.length; i++) {
        const r = ranges[i]!
        const end = r.offset + r.length
        for (let off = r.offset; off < end; off += slotSize) {
          const want = Math.min(slotSize, end - off)
          if ((await fill(i, off, want, off + want >= end, r.label, r.checksum?.algorithm)) < 0) return
        }
      }
    } else {
      const limit = job.imageSize
      for (let off = 0; limit === undefined || off < limit; off += slotSize) {
        const want = limit === undefined ? slotSize : Math.min(slotSize, limit - off)
        const n = await fill(
          -1,
          off,
          want,
          false,
          limit === undefined ? undefined : `the ${limit}-byte image its partition table describes`,
        )
        if (n < want) break
      }
    }
    pieces.push(null)
  }
  void produce().catch((e: unknown) => pieces.fail(e))

  /** Writes bytes at `offset` (copying what falls in the held-back part); `done` settles when on the target. */
  const emit = async (offset: number, bytes: Uint8Array, recorded: boolean): Promise<{ done: Promise<void> }> => {
    let from = 0
    if (offset < job.holdBack) {
      from = Math.min(bytes.length, job.holdBack - offset)
      held.set(bytes.subarray(0, from), offset)
    }
    if (from === bytes.length) return { done: Promise.resolve() }
    const at = offset + from
    const piece = bytes.subarray(from)
    if (at + piece.length > job.targetSize) {
      throw new InputError(
        'TARGET_TOO_SMALL',
        `Cannot write image byte ${at + piece.length - 1}: the target "${target.path}" has only ${job.targetSize} bytes`,
        {
          hint: 'use a larger disk, or a smaller image',
        },
      )
    }
    if (job.recordExtents && !recorded) out.extents.push({ offset: at, length: piece.length, sha256: sha256Hex(piece) })
    return await queue.submit(at, piece)
  }
  /** A slot goes back to the pool once nothing reads it any more: not the disk, not the hashing thread. */
  const releaseAfter = (p: Piece, ...users: Array<Promise<unknown> | undefined>): void => {
    void Promise.allSettled([...users, p.hashed]).then(() => pool.release(p.slot))
  }
  const writeThenRelease = async (p: Piece, recorded: boolean): Promise<void> => {
    let done: Promise<void> | undefined
    try {
      ;({ done } = await emit(p.offset, p.slot.subarray(0, p.length), recorded))
    } finally {
      releaseAfter(p, done)
    }
  }

  // Consumer: checks and writes, in order.
  const pending: Piece[] = []
  try {
    if (job.mode === 'bmap') {
      const total = ranges.reduce((s, r) => s + r.length, 0)
      let done = 0
      let lastEnd = 0
      for (let p = await pieces.next(); p !== null; p = await pieces.next()) {
        if (opts.signal?.aborted) throw new InterruptedError('Interrupted while writing the image')
        const r = ranges[p.range]!
        const strict = r.length <= job.verifyLimit
        // The range's own SHA-256 serves read-back, unless it overlaps the held-back part (written
        // in part) or its digest is another algorithm: then each written piece gets its own.
        const recorded = r.checksum?.algorithm === 'sha256' && r.offset >= job.holdBack
        if (strict) pending.push(p)
        else await writeThenRelease(p, recorded)
        done += p.length
        opts.onProgress?.({ done, total })
        if (!p.last) continue
        const c = r.checksum
        if (c !== undefined) {
          const digest = await digestOf(p.range, c.algorithm).digest()
          if (digest !== c.digest.toLowerCase()) {
            throw new InputError(
              'CHECKSUM_MISMATCH',
              `Cannot write ${r.label} (image bytes ${r.offset}–${r.offset + r.length - 1}): its ${ALGORITHM_NAMES[c.algorithm]} is ${digest}, the bmap expects ${c.digest}`,
              {
                hint: 'the image is corrupt, or the bmap belongs to another image',
              },
            )
          }
          out.rangesVerified++
        } else out.rangesUnverified++
        if (!strict) out.rangesStreamed++
        while (pending.length > 0) await writeThenRelease(pending.shift()!, recorded)
        if (job.recordExtents && recorded)
          out.extents.push({ offset: r.offset, length: r.length, sha256: c!.digest.toLowerCase() })
        out.bytesSkipped += Math.max(0, r.offset - lastEnd)
        lastEnd = r.offset + r.length
        out.imageEnd = lastEnd
      }
      if (job.imageSize !== undefined) out.bytesSkipped += Math.max(0, job.imageSize - lastEnd)
    } else {
      for (let p = await pieces.next(); p !== null; p = await pieces.next()) {
        if (opts.signal?.aborted) throw new InterruptedError('Interrupted while writing the image')
        const data = p.slot.subarray(0, p.length)
        const runs =
          job.mode === 'dense'
            ? p.length > 0
              ? [[0, p.length] as [number, number]]
              : []
            : nonZeroRuns(data, job.blockSize)
        // Zeros inside the held-back part matter too: the first MiB is written whole at the end.
        if (p.offset < job.holdBack) held.set(data.subarray(0, Math.min(p.length, job.holdBack - p.offset)), p.offset)
        const writes: Array<Promise<void>> = []
        let written = 0
        try {
          for (const [a, b] of runs) {
            writes.push((await emit(p.offset + a, data.subarray(a, b), false)).done)
            written += b - a
          }
        } finally {
          void Promise.allSettled(writes).then(() => pool.release(p.slot))
        }
        out.bytesSkipped += p.length - written
        out.imageEnd = p.offset + p.length
        opts.onProgress?.({ done: out.imageEnd, ...(job.imageSize !== undefined ? { total: job.imageSize } : {}) })
      }
    }
  } catch (e) {
    pieces.stopped = true
    for (const p of pending) releaseAfter(p)
    // Writes already queued finish (or fail) before the caller zeroes the first MiB again.
    await queue.drain().catch(() => {})
    throw e
  } finally {
    if (hashing !== opts.hasher) void hashing?.close()
  }
  await queue.drain()
  out.bytesWritten = queue.bytes
  return out
}
