// Punching holes in a file from a long-lived `xargs -0 -n 7 fallocate` helper: the spool
// reader frees what it has consumed every 128 MiB, and spawning `fallocate` from this
// (large) process each time costs 10–50 ms of its CPU to fork; xargs forks the small
// `fallocate` instead. Arguments go NUL-separated, so no shell and no quoting are involved.

import { spawn, type ChildProcess } from 'node:child_process'
import { punchHoleArgv } from './zero-range.js'

const ARGS_PER_PUNCH = punchHoleArgv('f', 0, 1).length - 1

/** xargs argv running one `fallocate --punch-hole …` per seven NUL-terminated arguments. */
export function holePuncherArgv(): string[] {
  return ['xargs', '-0', '-n', String(ARGS_PER_PUNCH), 'fallocate']
}

/** Best-effort hole punching (freeing memory, not a correctness matter): failures are ignored. */
export class HolePuncher {
  private proc: ChildProcess | undefined
  private exited: Promise<void> = Promise.resolve()

  /** Asks for [offset, offset+length) of `file` to be punched out. */
  punch(file: string, offset: number, length: number): void {
    if (!this.proc) {
      const argv = holePuncherArgv()
      const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'ignore', 'ignore'] })
      proc.on('error', () => {})
      proc.stdin!.on('error', () => {})
      this.exited = new Promise((resolve) => proc.on('close', () => resolve()))
      this.proc = proc
    }
    const args = punchHoleArgv(file, offset, length).slice(1)
    this.proc.stdin!.write(args.map((a) => `${a}\0`).join(''))
  }

  /** Lets the helper finish the punches asked for, and exit. */
  async close(): Promise<void> {
    this.proc?.stdin!.end()
    await this.exited
  }
}
