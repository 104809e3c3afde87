// Decompression by the Debian programs (zstd, xz, gzip) in a subprocess: the concurrency
// of the pipeline, on another core. It reads a local file itself, or is fed the compressed
// bytes by us (downloads, stdin: hashed on the way); we read what it produces.
//
// zstd and xz write into a *sparse spool file* instead of a pipe: they seek over runs of
// zeros (zstd --sparse, xz's default for a regular file) so only the image's data crosses
// from their process to ours; through a pipe every zero byte of a 2 GiB image would be
// copied twice, which measured slower than the decompression itself on a 2-core machine.
// The spool lives in /dev/shm when it has room, has no name there (unlinked-file.ts: it
// goes with the process, even a killed one), is read as it grows (a decompressor only
// moves forward, so every byte below the file's size is final), is hole-punched behind
// the reader, and the decompressor is stopped (SIGSTOP) while the reader is more than
// `window` bytes behind: memory stays bounded however large the image. gzip has no sparse
// mode and uses a pipe, whose own backpressure bounds it.

import type { ChildProcess } from 'node:child_process'
import { constants, promises as fsp } from 'node:fs'
import os from 'node:os'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { HwimageError, InputError, InterruptedError } from '../errors.js'
import { spawnError, spawnTool } from '../tools/run.js'
import { HolePuncher } from './hole-puncher.js'
import { StreamImageReader, type ImageReader } from './image-reader.js'
import { readFully } from './read-fully.js'
import { openUnlinkedFile } from './unlinked-file.js'

/** A compression format the installer decompresses with a Debian program. */
export type Compression = 'zstd' | 'xz' | 'gzip'

/**
 * What the decompressor reads: chunks we feed it (a download, stdin: hashed on their way),
 * or an open file it reads itself. A file is better: the decompressor then never waits
 * for our event loop to refill its 64 KiB input pipe, which on a busy machine made it
 * twice as slow; the file's digest is computed by a separate read (image-stack.ts).
 */
export type DecompressInput = AsyncIterable<Uint8Array> | { fd: number }

const isFd = (i: DecompressInput): i is { fd: number } => typeof (i as { fd?: unknown }).fd === 'number'

/** Options for startDecompressor. */
export interface DecompressOptions {
  signal?: AbortSignal
  /** Where the spool file goes (default /dev/shm when it has room, else the temp dir); null = use a pipe. */
  spoolDir?: string | null
  /** How far (bytes) the decompressor may run ahead of the reader (default 256 MiB). */
  window?: number
  /** Consumed bytes are punched out of the spool in steps of this size (default 128 MiB). */
  punchStep?: number
  /** For error messages: the source's name. */
  sourceName?: string
}

const DEFAULT_WINDOW = 256 << 20
// The spool is punched behind the reader in these steps (hole-puncher.ts).
const PUNCH_STEP = 128 << 20
const MAX_POLL_MS = 16
const THROTTLE_MS = 10

/** The argv of the decompressor for a format, reading stdin, writing stdout. */
export function decompressArgv(format: Compression, sparse: boolean): string[] {
  switch (format) {
    case 'zstd':
      // --no-asyncio: zstd's extra I/O thread only competes with us for the cores when the
      // output is a spool in memory (measured: 10–20% less system time).
      return sparse ? ['zstd', '-dcq', '--sparse', '--no-asyncio'] : ['zstd', '-dcq']
    case 'xz':
      // -T0: xz 5.4 decompresses multi-block files in parallel. Sparse output is xz's
      // default when stdout is a regular file; --no-sparse turns it off for the pipe.
      return sparse ? ['xz', '-dcq', '-T0'] : ['xz', '-dcq', '-T0', '--no-sparse']
    case 'gzip':
      return ['gzip', '-dcq']
  }
}

/** Whether a format's program can write a sparse spool. */
export function canSpool(format: Compression): boolean {
  return format !== 'gzip'
}

/** Maps a decompressor's failure to SOURCE_TRUNCATED or SOURCE_CORRUPT, naming where it stopped. */
export function decompressFailure(
  format: Compression,
  stderr: string,
  where: { source: string; compressedBytes: number; imageBytes: number },
): InputError {
  const last = stderr.trim().split('\n').filter(Boolean).pop() ?? ''
  const truncated = /unexpected end|premature end|truncated|end of (file|input)/i.test(stderr)
  const at = `after ${where.compressedBytes} compressed bytes (image byte ${where.imageBytes})`
  // "zstd: /*stdin*\ : Decoding error (36) : …", "xz: (stdin): …", "gzip: stdin: …" → the words after the names.
  const words = last.replace(/^\S+:\s*/, '').replace(/^(\/\*stdin\*\\\s*:|\(stdin\):|stdin:)\s*/, '')
  const detail = words ? `: ${format} says "${words}"` : ''
  return truncated
    ? new InputError(
        'SOURCE_TRUNCATED',
        `Cannot decompress "${where.source}": the ${format} stream ends early, ${at}${detail}`,
        { hint: 'the file is incomplete: download it again' },
      )
    : new InputError(
        'SOURCE_CORRUPT',
        `Cannot decompress "${where.source}": the ${format} stream is corrupt, ${at}${detail}`,
        { hint: 'the file is damaged: download it again and check its SHA-256' },
      )
}

/** Starts the decompressor over `input` and returns a reader of the image it produces. */
export async function startDecompressor(
  format: Compression,
  input: DecompressInput,
  opts: DecompressOptions = {},
): Promise<ImageReader> {
  const spoolDir =
    opts.spoolDir === null || !canSpool(format)
      ? null
      : (opts.spoolDir ?? (await defaultSpoolDir(opts.window ?? DEFAULT_WINDOW)))
  return spoolDir === null ? pipeReader(format, input, opts) : await SpoolReader.start(format, input, spoolDir, opts)
}

async function defaultSpoolDir(window: number): Promise<string> {
  try {
    const st = await fsp.statfs('/dev/shm')
    await fsp.access('/dev/shm', constants.W_OK)
    if (st.bavail * st.bsize >= 2 * (window + PUNCH_STEP)) return '/dev/shm'
  } catch {
    // no /dev/shm (some containers): the temp dir's page cache does the same job
  }
  return os.tmpdir()
}

/** A running decompressor: its exit, its stderr, and the feeding of its stdin (or the file it reads). */
class Child {
  readonly exit: Promise<{ status: number | null; signal: NodeJS.Signals | null }>
  stderr = ''
  fed = 0
  feedError: unknown = undefined
  readonly feeding: Promise<void>
  private stopped = false

  constructor(
    readonly proc: ChildProcess,
    readonly argv: string[],
    private readonly input: DecompressInput,
  ) {
    proc.stderr!.on('data', (b: Buffer) => {
      if (this.stderr.length < 65536) this.stderr += b.toString('utf8')
    })
    this.exit = new Promise((resolve, reject) => {
      proc.on('error', (e) => reject(spawnError(argv, e as NodeJS.ErrnoException)))
      proc.on('close', (status, signal) => resolve({ status, signal }))
    })
    this.exit.catch(() => {})
    if (isFd(input)) {
      this.feeding = Promise.resolve()
      return
    }
    const self = this
    async function* feed(): AsyncGenerator<Uint8Array> {
      for await (const chunk of input as AsyncIterable<Uint8Array>) {
        self.fed += chunk.length
        yield chunk
      }
    }
    // A decompressor that stops early (corrupt data) closes its stdin: EPIPE here is
    // expected, and its exit status says what happened. A source error (network) is kept.
    this.feeding = pipeline(Readable.from(feed()), proc.stdin!).catch((e: unknown) => {
      const code = (e as NodeJS.ErrnoException).code
      if (code !== 'EPIPE' && code !== 'ERR_STREAM_PREMATURE_CLOSE') this.feedError = e
    })
  }

  /** Compressed bytes the decompressor took: fed by us, or its offset in the file it reads (shared with our descriptor). */
  async compressedBytes(): Promise<number> {
    if (!isFd(this.input)) return this.fed
    const info = await fsp.readFile(`/proc/self/fdinfo/${this.input.fd}`, 'utf8').catch(() => '')
    return Number(/^pos:\s*(\d+)/m.exec(info)?.[1] ?? 0)
  }

  /** Waits for the end; throws the source's error, or the decompressor's failure. */
  async check(format: Compression, source: string, imageBytes: number, signal?: AbortSignal): Promise<void> {
    await this.feeding
    const { status, signal: sig } = await this.exit
    if (signal?.aborted) throw new InterruptedError('Interrupted while decompressing')
    if (this.feedError !== undefined) throw this.feedError
    if (status === 0) return
    if (sig)
      throw new HwimageError('TOOL_FAILED', `Cannot decompress "${source}": ${this.argv[0]} was killed by ${sig}`)
    throw decompressFailure(format, this.stderr, { source, compressedBytes: await this.compressedBytes(), imageBytes })
  }

  /**
   * Pauses (SIGSTOP) or resumes (SIGCONT) the decompressor: the spool's backpressure. A
   * stopped decompressor stops reading, so a file stays where it is and a fed stream
   * backs up through the pipe into our stream and the TCP connection.
   */
  pause(stop: boolean): void {
    if (stop === this.stopped || !this.running) return
    this.stopped = stop
    this.proc.kill(stop ? 'SIGSTOP' : 'SIGCONT')
  }

  private get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null
  }

  kill(): void {
    if (!this.running) return
    // A stopped process would not act on SIGTERM until continued.
    if (this.stopped) this.pause(false)
    this.proc.kill('SIGTERM')
  }
}

function pipeReader(format: Compression, input: DecompressInput, opts: DecompressOptions): ImageReader {
  const argv = decompressArgv(format, false)
  const proc = spawnTool(argv, { stdio: [isFd(input) ? input.fd : 'pipe', 'pipe', 'pipe'] })
  const child = new Child(proc, argv, input)
  const onAbort = () => child.kill()
  opts.signal?.addEventListener('abort', onAbort, { once: true })
  let produced = 0
  async function* out(): AsyncGenerator<Uint8Array> {
    for await (const chunk of proc.stdout!) {
      produced += (chunk as Buffer).length
      yield chunk as Buffer
    }
  }
  return new StreamImageReader(
    out(),
    undefined,
    () => child.check(format, opts.sourceName ?? 'source', produced, opts.signal),
    async () => {
      opts.signal?.removeEventListener('abort', onAbort)
      child.kill()
      await child.exit.catch(() => {})
    },
  )
}

/** A decompressor writing a sparse spool file, read as it grows. */
class SpoolReader implements ImageReader {
  readonly knownSize = undefined
  private size = 0
  private consumed = 0
  /** The end of the read waiting for data: the decompressor must go on at least until the spool reaches it. */
  private wanted = 0
  private punched = 0
  private readonly puncher: HolePuncher
  private done = false
  private closed = false

  private constructor(
    private readonly format: Compression,
    private readonly fh: fsp.FileHandle,
    private readonly child: Child,
    private readonly opts: DecompressOptions,
  ) {
    this.puncher = new HolePuncher(fh.fd)
  }

  static async start(
    format: Compression,
    input: DecompressInput,
    spoolDir: string,
    opts: DecompressOptions,
  ): Promise<SpoolReader> {
    // One descriptor, shared with the decompressor as its stdout: it writes at the file
    // offset, we only read at positions (pread) and fstat, which leave that offset alone.
    const fh = await openUnlinkedFile(spoolDir, 'hwimage-spool-')
    const argv = decompressArgv(format, true)
    let proc: ChildProcess
    try {
      proc = spawnTool(argv, { stdio: [isFd(input) ? input.fd : 'pipe', fh.fd, 'pipe'] })
    } catch (e) {
      await fh.close()
      throw e
    }
    const reader = new SpoolReader(format, fh, new Child(proc, argv, input), opts)
    const timer = setInterval(() => void reader.throttle(), THROTTLE_MS)
    void reader.child.exit.finally(() => clearInterval(timer)).catch(() => {})
    const onAbort = () => reader.child.kill()
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    reader.child.exit.finally(() => opts.signal?.removeEventListener('abort', onAbort)).catch(() => {})
    void reader.child.exit.then(
      () => (reader.done = true),
      () => (reader.done = true),
    )
    return reader
  }

  private async poll(): Promise<void> {
    this.size = (await this.fh.stat()).size
  }

  /** Every THROTTLE_MS: the decompressor is stopped while more than `window` bytes ahead of the reader, continued at half that. */
  private async throttle(): Promise<void> {
    if (this.closed || this.done) return
    await this.poll()
    const ahead = this.size - Math.max(this.consumed, this.wanted)
    const window = this.opts.window ?? DEFAULT_WINDOW
    if (ahead > window) this.child.pause(true)
    else if (ahead < window / 2) this.child.pause(false)
  }

  async read(offset: number, dst: Uint8Array): Promise<number> {
    const need = offset + dst.length
    this.wanted = need
    if (this.size < need) this.child.pause(false)
    // Back off while waiting (1, 2, 4 … 16 ms): a decompressor slower than the writes would
    // otherwise be polled thousands of times.
    for (let delay = 1; this.size < need && !this.done; delay = Math.min(delay * 2, MAX_POLL_MS)) {
      await this.poll()
      if (this.size >= need) break
      await Promise.race([sleep(delay), this.child.exit.catch(() => {})])
    }
    // What the decompressor wrote is served even when it has since failed (a download cut
    // off after it, a corrupt frame further on): the failure is raised by the first read
    // it cannot serve, or by finish(). So a failure surfaces where the data runs out, the
    // same way however fast the decompressor got there (correctness does not rest on it:
    // bmap digests, the source digest and the exit status in finish() do that).
    if (this.done) {
      await this.poll()
      if (this.size < need)
        await this.child.check(this.format, this.opts.sourceName ?? 'source', this.size, this.opts.signal)
    }
    const n = await readFully(this.fh, dst, offset)
    this.advance(offset + n)
    return n
  }

  /** Marks bytes below `to` as consumed and punches them out of the spool in big steps. */
  private advance(to: number): void {
    if (to > this.consumed) this.consumed = to
    const edge = Math.floor(this.consumed / 4096) * 4096
    if (edge - this.punched >= (this.opts.punchStep ?? PUNCH_STEP)) {
      const from = this.punched
      this.punched = edge
      this.puncher.punch(from, edge - from)
    }
  }

  async finish(): Promise<number> {
    // The rest is not read, but the decompressor must get to the end: no more holding back.
    this.wanted = Number.MAX_SAFE_INTEGER
    this.child.pause(false)
    await this.child.check(this.format, this.opts.sourceName ?? 'source', this.size, this.opts.signal)
    await this.poll()
    return this.size
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.child.kill()
    await this.child.exit.catch(() => {})
    // Not awaiting the feeding: a source stalled in a read (stdin kept open) would hang
    // here; its pipeline was torn down with the decompressor's stdin.
    await this.puncher.close()
    // The spool has no name: closing our descriptor (the decompressor's is gone with it) frees it.
    await this.fh.close().catch(() => {})
  }
}
