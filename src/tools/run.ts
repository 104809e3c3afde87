// One way to run external programs: argv arrays, never a shell. A failure is a
// ToolError carrying the quoted argv, the exit status or signal and the tail of
// stderr; a missing program names the Debian package to install. Every child is
// started by spawnTool(), which makes it die with hwimage, even on SIGKILL.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
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

/**
 * Spawns `argv` as child_process.spawn() would, through `setpriv --pdeathsig SIGKILL`:
 * setpriv sets PR_SET_PDEATHSIG (prctl(2)) on itself and execs the program in the same
 * process, so the kernel kills the program when hwimage dies, however it dies (a SIGKILL
 * runs none of our handlers; a process group would survive it). The signal is sent when
 * the *thread* that forked the child exits: Node forks in uv_spawn() on the thread that
 * calls spawn(), which for every hwimage child is the main thread (the hashing worker
 * starts no programs), so it fires only when the process ends. Not covered: a death in
 * the ~1 ms between the fork and setpriv's prctl(), and the children of a child (xargs's
 * short-lived fallocate), which have their own parent.
 *
 * The pid, SIGSTOP/SIGCONT/SIGTERM and the exit status are the program's (setpriv execs,
 * it does not fork). A program not on PATH is spawned directly, so that Node's ENOENT
 * names it (spawnError turns that into TOOL_MISSING with its package).
 */
export function spawnTool(argv: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  const [program, ...args] = argv
  if (!program) throw new TypeError('spawnTool() needs a program')
  const env = opts.env ?? process.env
  if (!findProgram(program, env.PATH, opts.cwd)) return spawn(program, args, opts)
  // setpriv execvp()s the name it is given, on the same PATH: the program's argv[0] stays as given.
  return spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', program, ...args], opts)
}

/** Whether `program` is an executable file: a path (relative to `cwd`), or a name found on `PATH`. */
function findProgram(program: string, pathVar: string | undefined, cwd: string | URL | undefined): boolean {
  const executable = (file: string): boolean => {
    try {
      const st = statSync(file)
      return st.isFile() && (st.mode & 0o111) !== 0
    } catch {
      return false
    }
  }
  if (program.includes('/'))
    return executable(path.resolve(cwd === undefined ? '.' : cwd instanceof URL ? fileURLToPath(cwd) : cwd, program))
  return (pathVar ?? '').split(':').some((dir) => dir !== '' && executable(path.join(dir, program)))
}

/** Runs a program to completion and returns its output; throws ToolError on failure. */
export async function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const program = argv[0]
  if (!program) throw new TypeError('run() needs a program')
  const spawnOpts: SpawnOptions = {
    cwd: opts.cwd,
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  }
  return await new Promise<RunResult>((resolve, reject) => {
    const child = spawnTool(argv, spawnOpts)
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
  // What Node could not start: the program itself, or setpriv in front of it (spawnTool).
  const program = (e as { path?: unknown }).path === 'setpriv' ? 'setpriv' : (argv[0] ?? '')
  if (e.code === 'ENOENT') {
    const pkg = packageOf(program.split('/').pop() ?? program)
    return new ToolError(
      'TOOL_MISSING',
      `Cannot run ${program}: program not found`,
      { argv },
      {
        hint: pkg ? `apt-get install ${pkg} (or run \`make setup\`)` : 'install it, or run `make setup`',
        cause: e,
      },
    )
  }
  return new ToolError('TOOL_FAILED', `Cannot run ${program}: ${e.message}`, { argv }, { cause: e })
}

/** The ToolError for a program that exited unsuccessfully. */
export function failure(
  argv: readonly string[],
  status: number | null,
  signal: NodeJS.Signals | null,
  stderr: string,
): ToolError {
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
