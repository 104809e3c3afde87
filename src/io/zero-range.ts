// Making a byte range of a target read as zeros, with a guarantee, as cheaply as the
// target allows:
// - block device: `blkdiscard --zeroout` = the BLKZEROOUT ioctl. The kernel guarantees the
//   range reads back as zeros afterwards: it uses Write Zeroes (or an unmap that the device
//   promises reads as zero) when the device has it, else it writes zero pages itself
//   (block/blk-lib.c, blkdev_issue_zeroout). A plain discard (BLKDISCARD) is NOT enough:
//   most devices make no promise about what discarded blocks read as.
// - regular file: `fallocate --punch-hole --keep-size`; a punched hole reads as zeros
//   (fallocate(2), FALLOC_FL_PUNCH_HOLE). File systems without hole punching get zeros written.

import { ToolError } from '../errors.js'
import { run } from '../tools/run.js'
import type { TargetDevice } from './target-device.js'

/** How a range was zeroed. */
export type ZeroMethod = 'zeroout' | 'punch-hole' | 'written'

/**
 * blkdiscard argv that zeroes [offset, offset+length) of a block device. `--force`: we hold
 * the device open O_EXCL ourselves (after our own busy checks), which blkdiscard's own
 * exclusive open would otherwise collide with.
 */
export function blkdiscardZeroArgv(device: string, offset: number, length: number): string[] {
  return ['blkdiscard', '--force', '--zeroout', '--offset', String(offset), '--length', String(length), device]
}

/** fallocate argv that punches [offset, offset+length) out of a file, keeping its size. */
export function punchHoleArgv(file: string, offset: number, length: number): string[] {
  return ['fallocate', '--punch-hole', '--keep-size', '--offset', String(offset), '--length', String(length), file]
}

/**
 * Makes [offset, offset+length) of the target read as zeros; offset and length must be
 * multiples of the target's sector size. Returns the method used.
 */
export async function zeroRange(
  target: TargetDevice,
  offset: number,
  length: number,
  opts: { signal?: AbortSignal } = {},
): Promise<ZeroMethod> {
  if (length <= 0) return 'written'
  if (target.isBlockDevice) {
    await run(blkdiscardZeroArgv(target.path, offset, length), { signal: opts.signal })
    return 'zeroout'
  }
  try {
    await run(punchHoleArgv(target.path, offset, length), { signal: opts.signal })
    return 'punch-hole'
  } catch (e) {
    // "fallocate failed: Operation not supported": a file system without holes (some FUSE,
    // old NFS). Write the zeros instead; anything else is a real failure.
    if (!(e instanceof ToolError) || e.code !== 'TOOL_FAILED' || !/not supported/i.test(e.stderrTail)) throw e
    await target.writeZeros(offset, length)
    return 'written'
  }
}
