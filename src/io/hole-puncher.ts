// Punching holes in an open file from a long-lived `xargs -0 -n 7 fallocate` helper: the
// spool reader frees what it has consumed every 128 MiB, and spawning `fallocate` from this
// (large) process each time costs 10–50 ms of its CPU to fork; xargs forks the small
// `fallocate` instead. Arguments go NUL-separated, so no shell and no quoting are involved.
//
// The file is given as a descriptor, not a name: the spool has none (it is unlinked as soon
// as it is opened, unlinked-file.ts). The helper gets the descriptor as its fd 3, which
// xargs's children inherit, and each `fallocate` opens it as /proc/self/fd/3: for a file
// without a name that link still opens the same inode (proc(5)).

import type { ChildProcess } from 'node:child_process'
import { spawnTool } from '../tools/run.js'
import { punchHoleArgv } from './zero-range.js'

const ARGS_PER_PUNCH = punchHoleArgv('f', 0, 1).length - 1
/** The helper's descriptor for the file, and the name each fallocate opens it by. */
const HELPER_FD = 3
const FILE_IN_HELPER = `/proc/self/fd/${HELPER_FD}`

/** xargs argv running one `fallocate --punch-hole …` per seven NUL-terminated arguments. */
export function holePuncherArgv(): string[] {
  return ['xargs', '-0', '-n', String(ARGS_PER_PUNCH), 'fallocate']
}

/** Best-effort hole punching in the file open as `fd` (freeing memory, not a correctness matter): failures are ignored. */
export class HolePuncher {
  private proc: ChildProcess | undefined
  private exited: Promise<void> = Promise.resolve()

  /** `fd` must stay open until close() has returned. */
  constructor(private readonly fd: number) {}

  /** Asks for [offset, offset+length) of the file to be punched out. */
  punch(offset: number, length: number): void {
    if (!this.proc) {
      const argv = holePuncherArgv()
      const proc = spawnTool(argv, { stdio: ['pipe', 'ignore', 'ignore', this.fd] })
      proc.on('error', () => {})
      proc.stdin!.on('error', () => {})
      this.exited = new Promise((resolve) => proc.on('close', () => resolve()))
      this.proc = proc
    }
    const args = punchHoleArgv(FILE_IN_HELPER, offset, length).slice(1)
    this.proc.stdin!.write(args.map((a) => `${a}\0`).join(''))
  }

  /** Lets the helper finish the punches asked for, and exit. */
  async close(): Promise<void> {
    this.proc?.stdin?.end()
    await this.exited
  }
}
