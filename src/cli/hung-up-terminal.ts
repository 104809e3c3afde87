// An exit that survives a terminal that hung up (SIGHUP: a closed window, a dropped SSH
// session). Node 20 records which of fds 0–2 are terminals when it starts and, at exit,
// restores their termios and asserts that tcsetattr(3) succeeded: on a terminal that is gone
// it fails with EIO, and Node aborts (SIGABRT) instead of exiting with our code (node.cc
// ResetStdio; the check was dropped upstream in nodejs/node#58200). Node skips a descriptor
// that no longer refers to the file it started with, so a dead terminal's descriptors are
// pointed at /dev/null before the exit. (Node writes process.stdout/stderr through its own
// reopened copies of a terminal, not through fds 1 and 2: their streams are not disturbed.)

import { closeSync, openSync } from 'node:fs'
import { isatty } from 'node:tty'

const STDIO = [0, 1, 2] as const

/** Which of fds 0, 1, 2 are terminals: call at start-up, for releaseHungUpTerminals(). */
export function stdioTerminals(): boolean[] {
  return STDIO.map((fd) => isatty(fd))
}

/**
 * Points each of fds 0–2 that was a terminal (`was`) and is none now (isatty(3) fails with
 * EIO after a hangup) at /dev/null. Returns the descriptors replaced.
 */
export function releaseHungUpTerminals(was: readonly boolean[]): number[] {
  const replaced: number[] = []
  for (const fd of STDIO) {
    if (!was[fd] || isatty(fd)) continue
    closeSync(fd)
    // The lowest free descriptor: `fd` itself, unless another thread took it in between
    // (then it is another file, which Node skips just the same).
    const got = openSync('/dev/null', 'r+')
    if (got !== fd) closeSync(got)
    else replaced.push(fd)
  }
  return replaced
}
