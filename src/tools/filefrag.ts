// filefrag (e2fsprogs): a file's allocation map through FIEMAP, synced first (-s).
// The image's .bmap is its allocation map, not a zero-block scan: blocks mkfs wrote
// as zeros on purpose must be written by the installer too.

import { run } from './run.js'

/** A run of allocated bytes of a file. */
export interface ByteExtent {
  offset: number
  length: number
}

/** filefrag argv: extents in bytes (-b1), verbose table, synced. */
export function filefragArgv(path: string): string[] {
  return ['filefrag', '-s', '-e', '-b1', path]
}

/** Parses `filefrag -e -b1` output into merged, sorted byte extents. */
export function parseFilefrag(text: string): ByteExtent[] {
  const out: ByteExtent[] = []
  // "   0:        0..    4095:   34816..   38911:   4096:             unwritten,last,eof"
  const re = /^\s*\d+:\s+(\d+)\.\.\s*(\d+):\s+\d+\.\.\s*\d+:\s+(\d+):/
  for (const line of text.split('\n')) {
    const m = re.exec(line)
    if (!m) continue
    const offset = Number(m[1])
    const length = Number(m[3])
    const last = out[out.length - 1]
    if (last && last.offset + last.length === offset) last.length += length
    else out.push({ offset, length })
  }
  return out.sort((a, b) => a.offset - b.offset)
}

/** The allocated extents of a file, in bytes. */
export async function allocatedExtents(path: string): Promise<ByteExtent[]> {
  const r = await run(filefragArgv(path))
  return parseFilefrag(r.stdout)
}
