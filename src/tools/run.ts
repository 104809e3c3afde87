// One way to run external programs: argv arrays, never a shell. A failure is a
// ToolError carrying the quoted argv, the exit status or signal and the tail of
// stderr; a missing program names the Debian package to install.

import { spawn, type SpawnOptions } from 'node:child_process'
import { InterruptedError, ToolError } from '../errors.js'
import { packageOf } from './programs.js'

export interface RunOptions {
  cwd?: string
  env?: Record<string, string | undefined>
  /** Bytes written to the program's stdin. */
  input?: string | Uint8Array
  /** Stream stderr to ours as it comes (long builds); it is still kept for errors. */
  inheritStderr?: boolean
  /** Exit statuses that count as success (default [0]). */
  okStatus?: readonly number[]
  signal?: AbortSignal
  /** Keep at most this many bytes of stdout (default 256 MiB). */
  maxStdout?: number
  /** Binary output: stdout is kept as bytes only (stdoutBytes), not decoded into `stdout`. */
  binary?: boolean
}

export interface RunResult {
  stdout: string
  /** stdout as bytes (binary output). */
  stdoutBytes: Buffer
  stderr: string
  status: number
}

const STDERR_TAIL = 4000

/** Quotes an argv for messages, the way a shell user would type it. */
export function quoteArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(' ')
}

/** Runs a program to completion and returns its output; throws ToolError on failure. */
export async function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [program, ...args] = argv
  if (!program) throw new TypeError('run() needs a program')
  const spawnOpts: SpawnOptions = {
    cwd: opts.cwd,
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  }
  return await new Promise<RunResult>((resolve, reject) => {
    const child = spawn(program, args, spawnOpts)
    const out: Buffer[] = []
    let outBytes = 0
    const maxStdout = opts.maxStdout ?? 256 * 1024 * 1024
    let err = ''
    const onAbort = () => child.kill('SIGTERM')
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    child.stdout!.on('data', (b: Buffer) => {
      if (outBytes < maxStdout) out.push(b)
      outBytes += b.length
    })
    child.stderr!.on('data', (b: Buffer) => {
      if (opts.inheritStderr) process.stderr.write(b)
      err += b.toString('utf8')
      if (err.length > 1024 * 1024) err = err.slice(-STDERR_TAIL * 4)
    })
    child.stdin!.on('error', () => {}) // a program that exits early closes its stdin: its status tells
    if (opts.input !== undefined) child.stdin!.end(opts.input)
    else child.stdin!.end()
    child.on('error', (e: NodeJS.ErrnoException) => {
      opts.signal?.removeEventListener('abort', onAbort)
      reject(spawnError(argv, e))
    })
    child.on('close', (status, signal) => {
      opts.signal?.removeEventListener('abort', onAbort)
      const stdoutBytes = Buffer.concat(out)
      const stdout = opts.binary ? '' : stdoutBytes.toString('utf8')
      if (opts.signal?.aborted) return reject(new InterruptedError(`Interrupted while running ${program}`))
      const ok = opts.okStatus ?? [0]
      if (status !== null && ok.includes(status)) return resolve({ stdout, stdoutBytes, stderr: err, status })
      reject(failure(argv, status, signal, err))
    })
  })
}

/** The ToolError for a program that could not be started. */
export function spawnError(argv: readonly string[], e: NodeJS.ErrnoException): ToolError {
  const program = argv[0] ?? ''
  if (e.code === 'ENOENT') {
    const pkg = packageOf(program.split('/').pop() ?? program)
    return new ToolError('TOOL_MISSING', `Cannot run ${program}: program not found`, { argv }, {
      hint: pkg ? `apt-get install ${pkg} (or run \`make setup\`)` : 'install it, or run `make setup`',
      cause: e,
    })
  }
  return new ToolError('TOOL_FAILED', `Cannot run ${program}: ${e.message}`, { argv }, { cause: e })
}

/** The ToolError for a program that exited unsuccessfully. */
export function failure(argv: readonly string[], status: number | null, signal: NodeJS.Signals | null, stderr: string): ToolError {
  const tail = stderr.trim().slice(-STDERR_TAIL)
  const how = signal ? `killed by ${signal}` : `exit status ${status}`
  const last = tail.split('\n').filter(Boolean).pop() ?? ''
  return new ToolError('TOOL_FAILED', `Command failed (${how}): ${quoteArgv(argv)}${last ? `: ${last}` : ''}`, {
    argv,
    status,
    signal,
    stderrTail: tail,
  })
}
