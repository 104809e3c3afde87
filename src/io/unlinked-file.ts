// A scratch file that has no name: the spools (a decompressor's output, stdin's qcow2) are
// open files only, so nothing is left behind in /dev/shm or the temp dir however hwimage
// ends — a SIGKILL included: the kernel frees the file with its last descriptor.
//
// open(2) O_TMPFILE makes the file without ever giving it a name (tmpfs, ext4, xfs, btrfs
// have it). Where the file system refuses it (EOPNOTSUPP; EISDIR from a kernel older than
// 3.11, which reads the flags as O_DIRECTORY), the file is made in a fresh directory and
// unlinked at once: a name then exists for the time of two system calls.

import { constants, promises as fsp } from 'node:fs'
import path from 'node:path'

// Linux's O_TMPFILE is __O_TMPFILE | O_DIRECTORY, and Node does not export it. __O_TMPFILE is
// 020000000 on x86, Arm and most others (include/uapi/asm-generic/fcntl.h); the architectures
// that differ (alpha, parisc, sparc) take the fallback.
const O_TMPFILE =
  ['x64', 'ia32', 'arm64', 'arm', 'riscv64', 'ppc64', 's390x', 'loong64'].includes(process.arch) &&
  constants.O_DIRECTORY !== undefined
    ? 0o20000000 | constants.O_DIRECTORY
    : undefined

/** Options for openUnlinkedFile. */
export interface UnlinkedFileOptions {
  /** Skip O_TMPFILE (tests of the fallback). */
  noTmpfile?: boolean
}

/** Opens a new empty file in `dir` for reading and writing, with no name; `prefix` names the fallback's short-lived directory. */
export async function openUnlinkedFile(
  dir: string,
  prefix: string,
  opts: UnlinkedFileOptions = {},
): Promise<fsp.FileHandle> {
  if (O_TMPFILE !== undefined && !opts.noTmpfile) {
    try {
      return await fsp.open(dir, O_TMPFILE | constants.O_RDWR, 0o600)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code !== 'EOPNOTSUPP' && code !== 'EISDIR' && code !== 'EINVAL') throw e
    }
  }
  const tmp = await fsp.mkdtemp(path.join(dir, prefix))
  try {
    const file = path.join(tmp, 'file')
    const fh = await fsp.open(file, 'wx+', 0o600)
    await fsp.unlink(file)
    return fh
  } finally {
    await fsp.rmdir(tmp).catch(() => {})
  }
}
