// A seekable .zst (independent frames and a seek table: src/disk/zstd-seek-table.ts) is
// decompressed in parallel lanes: the frames the install needs (those holding mapped
// data and the first MiB; all of them without a bmap) are dealt round-robin to N `zstd`
// processes, each fed its frames' compressed bytes in order and writing a spool of its
// own (decompress.ts). Reading the image in order then takes frame 0 from lane 0, frame 1
// from lane 1, …, while every lane decompresses ahead: one zstd process per core instead
// of one in all, and the frames holding only free space are never decompressed at all.
//
// The frames' bytes come from a local file (each lane reads its frames) or from a stream
// read once front to back (a download: the seek table was fetched first with a Range
// request), which a demultiplexer cuts at frame boundaries and hands to the lanes; the
// stream's skipped frames and its table are read too, for the whole file's digest.

import type { FileHandle } from 'node:fs/promises'
import os from 'node:os'
import { decodeSeekTable, FOOTER_BYTES, framesFor, seekTableLength, type SeekFrame, type SeekTable } from '../disk/zstd-seek-table.js'
import { InputError } from '../errors.js'
import { startDecompressor, type DecompressOptions } from './decompress.js'
import type { ImageReader } from './image-reader.js'

/** Compressed bytes handed to a lane at a time. */
const FEED_CHUNK = 4 << 20
/** The most lanes: beyond this the disk or the hash is the limit, and each lane holds a spool window. */
const MAX_LANES = 8
/** Spool bytes all lanes together may run ahead of the reader. */
const WINDOW_TOTAL = 512 << 20

/** Reads `length` bytes at `offset` (a file's pread, an HTTP Range request). */
export type ReadAt = (offset: number, length: number) => Promise<Uint8Array>

/** The seek table of a zstd file of `size` bytes, or undefined when it has none. */
export async function readSeekTable(readAt: ReadAt, size: number, name: string): Promise<SeekTable | undefined> {
  if (size < FOOTER_BYTES) return undefined
  const length = seekTableLength(await readAt(size - FOOTER_BYTES, FOOTER_BYTES), size, name)
  if (length === undefined) return undefined
  return decodeSeekTable(await readAt(size - length, length), size, name)
}

/** A FileHandle as a ReadAt. */
export function fileReadAt(fh: FileHandle): ReadAt {
  return async (offset, length) => {
    const buf = new Uint8Array(length)
    return buf.subarray(0, await readExactly(fh, buf, offset))
  }
}

/** Where the frames' bytes come from: an open file, or the whole .zst as one stream, front to back. */
export type FramedInput = { file: FileHandle } | { stream: AsyncIterable<Uint8Array> }

/** Options for startFramedZstd. */
export interface FramedOptions extends Pick<DecompressOptions, 'signal' | 'spoolDir' | 'sourceName'> {
  /** Image spans the reader will be asked for (default: all of it). */
  wanted?: Array<{ offset: number; length: number }>
  /** zstd processes at once (default: the number of cores). */
  lanes?: number
}

/** Starts the lanes over the frames of `input` that `opts.wanted` needs; returns a reader of the image. */
export async function startFramedZstd(input: FramedInput, table: SeekTable, opts: FramedOptions = {}): Promise<ImageReader> {
  const frames = opts.wanted ? framesFor(table, opts.wanted) : table.frames.filter((f) => f.imageSize > 0)
  const count = Math.max(1, Math.min(opts.lanes ?? os.availableParallelism(), MAX_LANES, frames.length))
  const placed: Placed[] = []
  const laneBytes = new Array<number>(count).fill(0)
  const numberOf = new Map(table.frames.map((f, i) => [f, i]))
  frames.forEach((frame, i) => {
    const lane = i % count
    placed.push({ frame, index: numberOf.get(frame)!, lane, laneOffset: laneBytes[lane]! })
    laneBytes[lane]! += frame.imageSize
  })
  const name = opts.sourceName ?? 'source'
  const demux = 'stream' in input ? new Demux(input.stream, table, placed, count) : undefined
  const lanes: ImageReader[] = []
  try {
    for (let lane = 0; lane < count; lane++) {
      const mine = placed.filter((p) => p.lane === lane)
      lanes.push(
        await startDecompressor('zstd', demux ? demux.lane(lane) : feed((input as { file: FileHandle }).file, mine.map((p) => p.frame)), {
          ...(opts.signal ? { signal: opts.signal } : {}),
          ...(opts.spoolDir !== undefined ? { spoolDir: opts.spoolDir } : {}),
          sourceName: name,
          window: Math.max(64 << 20, Math.floor(WINDOW_TOTAL / count)),
          where: (_compressed, output) => describeFrame(mine, output),
        }),
      )
    }
  } catch (e) {
    await Promise.allSettled(lanes.map((l) => l.close()))
    throw e
  }
  demux?.start()
  return new FramedZstdReader(table, placed, lanes, laneBytes, name, demux)
}

/** A frame in a lane: where its bytes start in that lane's output. */
interface Placed {
  frame: SeekFrame
  /** Its number in the file. */
  index: number
  lane: number
  laneOffset: number
}

/** The compressed bytes of `frames`, in order, read from the file in pieces. */
async function* feed(fh: FileHandle, frames: SeekFrame[]): AsyncGenerator<Uint8Array> {
  for (const f of frames) {
    for (let at = 0; at < f.compressedSize; at += FEED_CHUNK) {
      const chunk = Buffer.allocUnsafe(Math.min(FEED_CHUNK, f.compressedSize - at))
      const n = await readExactly(fh, chunk, f.compressedOffset + at)
      if (n < chunk.length) return // the file shrank: zstd reports the stream as truncated
      yield chunk
    }
  }
}

function describeFrame(mine: Placed[], output: number): string {
  const p = mine.find((x) => output < x.laneOffset + x.frame.imageSize) ?? mine[mine.length - 1]
  if (!p) return 'in its first frame'
  const f = p.frame
  return `in frame ${p.index} (compressed bytes ${f.compressedOffset}–${f.compressedOffset + f.compressedSize - 1}, image bytes ${f.imageOffset}–${f.imageOffset + f.imageSize - 1})`
}

class FramedZstdReader implements ImageReader {
  readonly knownSize: number
  /** placed[cursor] is the frame the last read was in: reads only go forward. */
  private cursor = 0

  constructor(
    private readonly table: SeekTable,
    private readonly placed: Placed[],
    private readonly lanes: ImageReader[],
    private readonly laneBytes: number[],
    private readonly name: string,
    private readonly demux: Demux | undefined,
  ) {
    this.knownSize = table.imageSize
  }

  async read(offset: number, dst: Uint8Array): Promise<number> {
    let n = 0
    while (n < dst.length && offset + n < this.table.imageSize) {
      const at = offset + n
      const p = this.frameAt(at)
      const f = p.frame
      const want = Math.min(dst.length - n, f.imageOffset + f.imageSize - at)
      const got = await this.lanes[p.lane]!.read(p.laneOffset + (at - f.imageOffset), dst.subarray(n, n + want))
      if (got < want) throw this.short(p)
      n += got
    }
    return n
  }

  async finish(): Promise<number> {
    // The stream is read to its end (skipped frames and the table too: the digest needs them).
    await this.demux?.done
    const sizes = await Promise.all(this.lanes.map((l) => l.finish()))
    sizes.forEach((size, lane) => {
      if (size !== this.laneBytes[lane]) throw this.short(this.placed.filter((p) => p.lane === lane).find((p) => size < p.laneOffset + p.frame.imageSize) ?? this.placed[0]!)
    })
    return this.table.imageSize
  }

  async close(): Promise<void> {
    this.demux?.stop()
    await Promise.allSettled(this.lanes.map((l) => l.close()))
  }

  private frameAt(at: number): Placed {
    while (this.cursor < this.placed.length && this.placed[this.cursor]!.frame.imageOffset + this.placed[this.cursor]!.frame.imageSize <= at) this.cursor++
    const p = this.placed[this.cursor]
    if (!p || p.frame.imageOffset > at) {
      // The caller promised (opts.wanted) never to ask for bytes of a skipped frame.
      throw new Error(`image byte ${at} of "${this.name}" is in a frame that was not decompressed`)
    }
    return p
  }

  private short(p: Placed): InputError {
    const f = p.frame
    return new InputError('SOURCE_CORRUPT', `Cannot decompress "${this.name}": frame ${p.index} (image bytes ${f.imageOffset}–${f.imageOffset + f.imageSize - 1}) holds fewer bytes than its seek table says`, {
      hint: 'the file is damaged or its seek table does not belong to it: download it again and check its SHA-256',
    })
  }
}

async function readExactly(fh: FileHandle, dst: Uint8Array, position: number): Promise<number> {
  let n = 0
  while (n < dst.length) {
    const { bytesRead } = await fh.read(dst, n, dst.length - n, position + n)
    if (bytesRead === 0) break
    n += bytesRead
  }
  return n
}

/** Bytes queued for one lane before the stream waits for that lane's zstd to take them. */
const LANE_QUEUE = 8 << 20

/**
 * Cuts one stream of the whole .zst at frame boundaries and queues each wanted frame's
 * bytes for its lane; the other bytes are read and dropped. A lane's queue is bounded:
 * the stream waits while it is full (frames alternate between lanes in stream order, so
 * the lane being waited for is the one the reader needs next, never a stalled one).
 */
class Demux {
  private readonly queues: Array<{ items: Uint8Array[]; bytes: number; ended: boolean; wake?: () => void }>
  /** Stream offset where each wanted frame starts → its lane. */
  private readonly laneAt = new Map<number, number>()
  private readonly frameAt: SeekFrame[]
  private space: (() => void) | undefined
  private stopped = false
  private failure: unknown = undefined
  done: Promise<void> = Promise.resolve()

  constructor(
    private readonly stream: AsyncIterable<Uint8Array>,
    table: SeekTable,
    placed: Placed[],
    lanes: number,
  ) {
    this.queues = Array.from({ length: lanes }, () => ({ items: [], bytes: 0, ended: false }))
    for (const p of placed) this.laneAt.set(p.frame.compressedOffset, p.lane)
    this.frameAt = table.frames
  }

  start(): void {
    this.done = this.pump()
    this.done.catch(() => {})
  }

  stop(): void {
    this.stopped = true
    this.space?.()
    for (const q of this.queues) q.wake?.()
  }

  /** The bytes of lane `i`'s frames, in order; ends when the stream has passed its last frame. */
  async *lane(i: number): AsyncGenerator<Uint8Array> {
    const q = this.queues[i]!
    for (;;) {
      const item = q.items.shift()
      if (item) {
        q.bytes -= item.length
        this.space?.()
        yield item
        continue
      }
      if (this.failure !== undefined) throw this.failure
      if (q.ended || this.stopped) return
      await new Promise<void>((r) => (q.wake = r))
      q.wake = undefined
    }
  }

  private async pump(): Promise<void> {
    let frame = 0
    let frameEnd = this.frameAt[0] ? this.frameAt[0].compressedSize : Number.MAX_SAFE_INTEGER
    let lane = this.frameAt[0] ? this.laneAt.get(0) : undefined
    let at = 0
    try {
      for await (const chunk of this.stream) {
        let from = 0
        while (from < chunk.length) {
          while (frame < this.frameAt.length && at >= frameEnd) {
            frame++
            const f = this.frameAt[frame]
            lane = f ? this.laneAt.get(f.compressedOffset) : undefined
            frameEnd = f ? f.compressedOffset + f.compressedSize : Number.MAX_SAFE_INTEGER
          }
          const to = Math.min(chunk.length, from + (frameEnd - at))
          if (lane !== undefined) await this.push(lane, chunk.subarray(from, to))
          if (this.stopped) return
          at += to - from
          from = to
        }
      }
    } catch (e) {
      this.failure = e
      throw e
    } finally {
      for (const q of this.queues) {
        q.ended = true
        q.wake?.()
      }
    }
  }

  private async push(lane: number, bytes: Uint8Array): Promise<void> {
    const q = this.queues[lane]!
    while (q.bytes >= LANE_QUEUE && !this.stopped) {
      await new Promise<void>((r) => (this.space = r))
      this.space = undefined
    }
    q.items.push(bytes)
    q.bytes += bytes.length
    q.wake?.()
  }
}
