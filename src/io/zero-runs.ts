// Which blocks of a buffer hold data: without a bmap, the installer writes only those (the
// image's span on the target was zeroed first, so skipped blocks read as zeros anyway).

const ZERO_BLOCK_MAX = 1 << 16
const ZEROS = Buffer.alloc(ZERO_BLOCK_MAX)

/**
 * The [start, end) runs of `bytes` made of blocks of `block` bytes that are not all zero,
 * adjacent blocks merged; a short last block counts like the others.
 */
export function nonZeroRuns(bytes: Uint8Array, block: number): Array<[number, number]> {
  if (block <= 0 || block > ZERO_BLOCK_MAX) throw new RangeError(`block size ${block} is not in 1–${ZERO_BLOCK_MAX}`)
  // One Buffer view, compared in place: Buffer#compare with ranges is a memcmp with no allocation per block.
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
  const runs: Array<[number, number]> = []
  let runStart = -1
  for (let at = 0; at < buf.length; at += block) {
    const end = Math.min(at + block, buf.length)
    const zero = ZEROS.compare(buf, at, end, 0, end - at) === 0
    if (!zero && runStart < 0) runStart = at
    if (zero && runStart >= 0) {
      runs.push([runStart, at])
      runStart = -1
    }
  }
  if (runStart >= 0) runs.push([runStart, buf.length])
  return runs
}
