// A seekable .zst (independent frames and a seek table: src/disk/zstd-seek-table.ts) is
// decompressed frame by frame inside the process, by libzstd through the native addon
// (zstd-native.ts), several frames at once on libuv's thread pool, each straight into a
// buffer of its own: the frames the install needs (those holding mapped data and the
// first MiB; all of them without a bmap) are decompressed ahead of the reader, in order,
// and the frames holding only free space are never decompressed at all.
//
// The frames' compressed bytes come from a local file (a pread per frame; when the file's
// digest is wanted, every frame and the table in order, each handed to the hashing thread
// as it is read, so that the file is read once) or from a stream read once front to back
// (a download: the seek table was fetched first with a Range request), cut at frame
// boundaries; the stream's skipped frames and its table are read too, for the digest.
//
// Memory: two SlotPools (aligned-memory.ts): (frames at once + 1) slots of the largest
// wanted frame (16 MiB frames from `hwimage build`: 48 MiB with two at once), plus (frames
// at once + SPARE_FRAMES) slots of the largest compressed frame, which also bound how far
// the file is read ahead of the hashing thread. A table with a frame larger than
// MAX_DECODED_FRAME is not read this way (image-stack.ts then streams the file through
// one zstd instead).

import type { FileHandle } from 'node:fs/promises'
import os from 'node:os'
import {
  decodeSeekTable,
  FOOTER_BYTES,
  framesFor,
  seekTableLength,
  type SeekFrame,
  type SeekTable,
} from '../disk/zstd-seek-table.js'
import { InputError } from '../errors.js'
import { IO_ALIGN, SlotPool } from './aligned-memory.js'
import type { Digest } from './digest.js'
import type { ImageReader } from './image-reader.js'
import { readFully, type ReadAt } from './read-fully.js'
import { zstdNative } from './zstd-native.js'

/** The largest frame (decompressed) read frame by frame; each frame at once holds a buffer this large. */
export const MAX_DECODED_FRAME = 64 << 20

/** The seek table of a zstd file of `size` bytes, or undefined when it has none. */
export async function readSeekTable(readAt: ReadAt, size: number, name: string): Promise<SeekTable | undefined> {
  if (size < FOOTER_BYTES) return undefined
  const length = seekTableLength(await readAt(size - FOOTER_BYTES, FOOTER_BYTES), size, name)
  if (length === undefined) return undefined
  return decodeSeekTable(await readAt(size - length, length), size, name)
}

/** Whether every frame of `table` is small enough to be read frame by frame. */
export function framesFit(table: SeekTable): boolean {
  return table.frames.every((f) => f.imageSize <= MAX_DECODED_FRAME)
}

/**
 * Where the frames' bytes come from: an open file, or the whole .zst as one stream, front
 * to back. With `hash` (a Digest's update, digest.ts), the file is read whole, in order
 * (skipped frames and the seek table too), and every piece, in shared memory, is handed to
 * `hash` as it is read.
 */
export type FramedInput = { file: FileHandle; hash?: Digest['update'] } | { stream: AsyncIterable<Uint8Array> }

/** Options for startFramedZstd. */
export interface FramedOptions {
  /** Image spans the reader will be asked for (default: all of it). */
  wanted?: Array<{ offset: number; length: number }>
  /** Frames decompressed at once (default: framesAtOnce()). */
  ahead?: number
  /** How to name the source in errors. */
  sourceName?: string
}

/**
 * Frames decompressed at once by default: one per core, but leaving two of libuv's pool
 * threads (4 unless UV_THREADPOOL_SIZE says otherwise) for the file reads and the disk
 * writes, which share that pool with the decompression.
 */
export function framesAtOnce(): number {
  const pool = Number(process.env.UV_THREADPOOL_SIZE) || 4
  return Math.max(1, Math.min(os.availableParallelism(), pool - 2))
}

/** Starts decompressing the frames of `input` that `opts.wanted` needs; returns a reader of the image. */
export async function startFramedZstd(
  input: FramedInput,
  table: SeekTable,
  opts: FramedOptions = {},
): Promise<ImageReader> {
  if (!framesFit(table)) throw new RangeError(`a frame of this seek table is larger than ${MAX_DECODED_FRAME} bytes`)
  const native = zstdNative()
  const frames = opts.wanted ? framesFor(table, opts.wanted) : table.frames.filter((f) => f.imageSize > 0)
  const numberOf = new Map(table.frames.map((f, i) => [f, i]))
  const placed = frames.map((frame) => ({ frame, index: numberOf.get(frame)! }))
  const name = opts.sourceName ?? 'source'
  const hash = 'file' in input ? input.hash : undefined
  const ahead = Math.max(1, opts.ahead ?? framesAtOnce())
  const spares = new SlotPool(
    slotFor(placed.reduce((m, p) => Math.max(m, p.frame.compressedSize), 0)),
    ahead + SPARE_FRAMES,
  )
  const source =
    'file' in input
      ? fromFile(input.file, table, placed, name, spares, hash)
      : fromStream(input.stream, table, placed, name, spares)
  return new FramedZstdReader(table, placed, source, native.decompressFrame, spares, ahead, name)
}

/** Compressed frames read ahead, beyond those being decompressed (the file is read ahead of the hashing thread by this many). */
const SPARE_FRAMES = 2

/** A slot size (a multiple of IO_ALIGN) that holds `bytes`. */
const slotFor = (bytes: number): number => Math.max(IO_ALIGN, Math.ceil(bytes / IO_ALIGN) * IO_ALIGN)

/** A wanted frame and its number in the file. */
interface Placed {
  frame: SeekFrame
  index: number
}

const where = (p: Placed): string => {
  const f = p.frame
  return `frame ${p.index} (compressed bytes ${f.compressedOffset}–${f.compressedOffset + f.compressedSize - 1}, image bytes ${f.imageOffset}–${f.imageOffset + f.imageSize - 1})`
}

/** The compressed bytes of each placed frame, in order, read from the file; with `hash`, the whole file read and hashed. */
async function* fromFile(
  fh: FileHandle,
  table: SeekTable,
  placed: Placed[],
  name: string,
  spares: SlotPool,
  hash?: Digest['update'],
): AsyncGenerator<Uint8Array> {
  const wanted = new Set(placed.map((p) => p.frame))
  const read = async (p: Placed): Promise<Uint8Array> => {
    const f = p.frame
    // Given back by the decompression (a wanted frame) and by the hashing thread.
    // Compressed buffers, reused once every reader of one has given it back: fresh memory for
    // every frame cost page faults, and without a limit the file was read as far ahead of the
    // hashing thread as it fell behind (69 buffers of 16 MiB were made for the default image).
    const bytes = await spares.acquire(f.compressedSize, (wanted.has(f) ? 1 : 0) + (hash ? 1 : 0))
    const n = await readFully(fh, bytes, f.compressedOffset)
    if (n < bytes.length) throw truncated(name, f.compressedOffset + n, p)
    // Given back when hashed, or when hashing failed (the failure is the digest's).
    hash?.(bytes).then(
      () => spares.release(bytes),
      () => spares.release(bytes),
    )
    return bytes
  }
  if (!hash) {
    for (const p of placed) yield await read(p)
    return
  }
  for (let i = 0; i < table.frames.length; i++) {
    const f = table.frames[i]!
    const bytes = await read({ frame: f, index: i })
    if (wanted.has(f)) yield bytes
  }
  const end = table.frames.reduce((s, f) => s + f.compressedSize, 0)
  const rest = new Uint8Array(new SharedArrayBuffer(table.tableBytes))
  if ((await readFully(fh, rest, end)) < rest.length)
    throw new InputError('SOURCE_TRUNCATED', `Cannot read "${name}": it ends before its seek table`, {
      hint: 'the file is incomplete: download it again',
    })
  hash(rest).catch(() => {})
}

/**
 * The compressed bytes of each placed frame, in order, cut from one stream of the whole
 * file; the other frames and the seek table are read and dropped, to the stream's end.
 */
async function* fromStream(
  stream: AsyncIterable<Uint8Array>,
  table: SeekTable,
  placed: Placed[],
  name: string,
  spares: SlotPool,
): AsyncGenerator<Uint8Array> {
  let next = 0 // placed[next] is the frame being gathered or waited for
  let bytes: Uint8Array | undefined
  let filled = 0
  let at = 0 // stream offset of chunk[0]
  for await (const chunk of stream) {
    let from = 0
    while (next < placed.length && from < chunk.length) {
      const f = placed[next]!.frame
      const start = f.compressedOffset
      const end = start + f.compressedSize
      if (at + chunk.length <= start) break // this chunk ends before the frame
      from = Math.max(from, start - at)
      const to = Math.min(chunk.length, end - at)
      bytes ??= await spares.acquire(f.compressedSize, 1)
      bytes.set(chunk.subarray(from, to), filled)
      filled += to - from
      from = to
      if (filled === f.compressedSize) {
        const done = bytes
        bytes = undefined
        filled = 0
        next++
        yield done
      }
    }
    at += chunk.length
  }
  if (next < placed.length) throw truncated(name, at, placed[next]!)
  if (at < table.frames.reduce((s, f) => Math.max(s, f.compressedOffset + f.compressedSize), 0) + table.tableBytes) {
    throw new InputError(
      'SOURCE_TRUNCATED',
      `Cannot read "${name}": it ends at compressed byte ${at}, before its seek table`,
      { hint: 'the download is incomplete: download it again' },
    )
  }
}

function truncated(name: string, at: number, p: Placed): InputError {
  return new InputError(
    'SOURCE_TRUNCATED',
    `Cannot decompress "${name}": it ends at compressed byte ${at}, inside ${where(p)}`,
    {
      hint: 'the file is incomplete, or its seek table does not belong to it: download it again and check its SHA-256',
    },
  )
}

class FramedZstdReader implements ImageReader {
  readonly knownSize: number
  /** Per placed frame: its decompressed bytes (a view of the buffer it holds until it is read). */
  private readonly decoded: Array<Promise<Uint8Array>>
  /** Per placed frame: the buffer it holds, if any. */
  private readonly held: Array<Uint8Array | undefined>
  /** Buffers for decompressed frames; frames wait for one in frame order. */
  private readonly frames: SlotPool
  /** Pulls from the source, one after the other: the n-th pull gets placed frame n. */
  private pulled: Promise<unknown> = Promise.resolve()
  /** placed[cursor] is the frame the last read was in: reads only go forward. */
  private cursor = 0
  private closed = false

  constructor(
    private readonly table: SeekTable,
    private readonly placed: Placed[],
    private readonly source: AsyncGenerator<Uint8Array>,
    private readonly decompress: (src: Uint8Array, dst: Uint8Array) => Promise<number>,
    /** Where a frame's compressed bytes go back once decompressed. */
    private readonly spares: SlotPool,
    ahead: number,
    private readonly name: string,
  ) {
    this.knownSize = table.imageSize
    const largest = placed.reduce((m, p) => Math.max(m, p.frame.imageSize), 0)
    this.frames = new SlotPool(slotFor(largest), Math.min(ahead + 1, placed.length))
    this.held = new Array(placed.length)
    // Every frame waits for a buffer, in order, then pulls its bytes and decompresses them.
    this.decoded = placed.map((p, i) => {
      const d = this.decode(p, i)
      d.catch(() => {}) // raised by the read that needs it
      return d
    })
  }

  async read(offset: number, dst: Uint8Array): Promise<number> {
    let n = 0
    while (n < dst.length && offset + n < this.table.imageSize) {
      const at = offset + n
      const i = this.frameAt(at)
      const f = this.placed[i]!.frame
      const bytes = await this.decoded[i]!
      const from = at - f.imageOffset
      const want = Math.min(dst.length - n, f.imageSize - from)
      dst.set(bytes.subarray(from, from + want), n)
      n += want
    }
    return n
  }

  async finish(): Promise<number> {
    // Every wanted frame decompressed (so damage in any of them is reported), then the
    // rest of the source read: a stream's skipped frames and table count for its digest.
    for (; this.cursor < this.placed.length; this.cursor++) {
      await this.decoded[this.cursor]
      this.release(this.cursor)
    }
    const drained = this.pulled.then(async () => {
      while (!(await this.source.next()).done);
    })
    this.pulled = drained
    await drained
    return this.table.imageSize
  }

  async close(): Promise<void> {
    this.closed = true
    this.frames.close()
    this.spares.close()
    // A pull waiting on the stream ends with the stream (the caller closes it); a
    // decompression running on the pool keeps its buffers alive until it is done.
    void this.source.return(undefined).catch(() => {})
  }

  private async decode(p: Placed, i: number): Promise<Uint8Array> {
    const dst = await this.frames.acquire()
    this.held[i] = dst
    if (this.closed) throw new Error('the reader was closed')
    const pull = this.pulled.then(() => this.source.next())
    this.pulled = pull
    const next = await pull
    if (next.done) throw truncated(this.name, p.frame.compressedOffset, p)
    const out = dst.subarray(0, p.frame.imageSize)
    let n: number
    try {
      n = await this.decompress(next.value, out)
    } catch (e) {
      throw new InputError(
        'SOURCE_CORRUPT',
        `Cannot decompress "${this.name}": ${(e as Error).message} in ${where(p)}`,
        {
          hint: 'the file is damaged: download it again and check its SHA-256',
          cause: e,
        },
      )
    } finally {
      this.spares.release(next.value)
    }
    if (n !== p.frame.imageSize) {
      throw new InputError(
        'SOURCE_CORRUPT',
        `Cannot decompress "${this.name}": ${where(p)} holds ${n} bytes, its seek table says ${p.frame.imageSize}`,
        {
          hint: 'the file is damaged or its seek table does not belong to it: download it again and check its SHA-256',
        },
      )
    }
    return out
  }

  /** Frame `i` was read: once its decompression has settled, its buffer goes to the next frame waiting. */
  private release(i: number): void {
    const give = (): void => {
      const b = this.held[i]
      this.held[i] = undefined
      if (b) this.frames.release(b)
    }
    void this.decoded[i]!.then(give, give)
  }

  /** The placed frame holding image byte `at`; frames before it are released. */
  private frameAt(at: number): number {
    while (
      this.cursor < this.placed.length &&
      this.placed[this.cursor]!.frame.imageOffset + this.placed[this.cursor]!.frame.imageSize <= at
    ) {
      this.release(this.cursor++)
    }
    const p = this.placed[this.cursor]
    if (!p || p.frame.imageOffset > at) {
      // The caller promised (opts.wanted) never to ask for bytes of a skipped frame.
      throw new Error(`image byte ${at} of "${this.name}" is in a frame that was not decompressed`)
    }
    return this.cursor
  }
}
