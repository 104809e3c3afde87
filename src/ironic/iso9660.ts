// The files of an ISO 9660 image (ECMA-119), with their Rock Ridge names (IEEE P1282, over
// SUSP P1281) when the image has them: what the agent needs to turn Ironic's config drive
// into the vfat CONFIG-2 volume IPA writes on a disk with 4096-byte sectors, where an ISO's
// 2048-byte blocks cannot be a partition's file system. The deploy environment carries no
// ISO tool (xorriso, bsdtar), and the config drive is small: read in memory.
//
// Bounded against a hostile image: at most MAX_FILES entries and MAX_DEPTH levels, every
// extent inside the image, each directory visited once.

import type { SeedFile } from '../seed/seed-files.js'

const MAX_FILES = 4096
const MAX_DEPTH = 16

/** A problem with the image: the message names it. */
export class IsoError extends Error {}

/** Every regular file of `iso`, with its path from the root ("openstack/latest/meta_data.json"). */
export function readIsoFiles(iso: Uint8Array): SeedFile[] {
  const view = new DataView(iso.buffer, iso.byteOffset, iso.byteLength)
  const pvd = 16 * 2048
  if (iso.length < pvd + 2048 || iso[pvd] !== 1 || text(iso, pvd + 1, 5) !== 'CD001')
    throw new IsoError('no ISO 9660 primary volume descriptor at 32 KiB')
  const block = view.getUint16(pvd + 128, true)
  if (block !== 2048 && block !== 512 && block !== 1024 && block !== 4096)
    throw new IsoError(`logical block size ${block} is not one ISO 9660 allows`)
  const extent = (lba: number, length: number): Uint8Array => {
    const start = lba * block
    if (start + length > iso.length)
      throw new IsoError(`an extent at block ${lba} (${length} bytes) ends past the image`)
    return iso.subarray(start, start + length)
  }

  // Rock Ridge is in use when the root's "." record starts its system use area with SUSP's SP.
  const root = record(iso, view, pvd + 156)
  const rootDir = extent(root.lba, root.length)
  const dot = record(rootDir, new DataView(rootDir.buffer, rootDir.byteOffset, rootDir.byteLength), 0)
  const rockRidge = dot.systemUse.length >= 7 && text(dot.systemUse, 0, 2) === 'SP' && dot.systemUse[4] === 0xbe

  const files: SeedFile[] = []
  const seen = new Set<number>()
  const walk = (lba: number, length: number, prefix: string, depth: number): void => {
    if (depth > MAX_DEPTH) throw new IsoError(`directories nested deeper than ${MAX_DEPTH}`)
    if (seen.has(lba)) throw new IsoError(`directory at block ${lba} is reached twice`)
    seen.add(lba)
    const dir = extent(lba, length)
    const dv = new DataView(dir.buffer, dir.byteOffset, dir.byteLength)
    for (let at = 0; at < dir.length; ) {
      if (dir[at] === 0) {
        // Records do not cross a block: the rest of this block is padding.
        at = (Math.floor(at / block) + 1) * block
        continue
      }
      const r = record(dir, dv, at)
      at += r.recordLength
      if (r.id.length === 1 && (r.id[0] === 0 || r.id[0] === 1)) continue // "." and ".."
      const name = (rockRidge ? rockRidgeName(r.systemUse, extent) : undefined) ?? isoName(r.id)
      if (name === '' || name === '.' || name === '..' || name.includes('/'))
        throw new IsoError(`a file name "${name}" that cannot be a path`)
      const path = prefix ? `${prefix}/${name}` : name
      if (files.length >= MAX_FILES) throw new IsoError(`more than ${MAX_FILES} files`)
      if (r.directory) walk(r.lba, r.length, path, depth + 1)
      else files.push({ path, bytes: new Uint8Array(extent(r.lba, r.length)) })
    }
  }
  walk(root.lba, root.length, '', 0)
  return files
}

interface DirRecord {
  recordLength: number
  lba: number
  length: number
  directory: boolean
  id: Uint8Array
  systemUse: Uint8Array
}

/** The directory record at `at` (ECMA-119 9.1). */
function record(buf: Uint8Array, view: DataView, at: number): DirRecord {
  const recordLength = buf[at] ?? 0
  if (recordLength < 34 || at + recordLength > buf.length) throw new IsoError(`a directory record at ${at} is damaged`)
  const idLength = buf[at + 32]!
  if (33 + idLength > recordLength) throw new IsoError(`a directory record at ${at} has a name longer than itself`)
  const suStart = at + 33 + idLength + (idLength % 2 === 0 ? 1 : 0)
  return {
    recordLength,
    lba: view.getUint32(at + 2, true),
    length: view.getUint32(at + 10, true),
    directory: (buf[at + 25]! & 0x02) !== 0,
    id: buf.subarray(at + 33, at + 33 + idLength),
    systemUse: buf.subarray(Math.min(suStart, at + recordLength), at + recordLength),
  }
}

/** The name from Rock Ridge NM entries, following a CE continuation area; undefined when there is none. */
function rockRidgeName(systemUse: Uint8Array, extent: (lba: number, length: number) => Uint8Array): string | undefined {
  let name: string | undefined
  let area: Uint8Array | undefined = systemUse
  for (let hops = 0; area && hops < 8; hops++) {
    const a: Uint8Array = area
    area = undefined
    for (let i = 0; i + 4 <= a.length; ) {
      const sig = text(a, i, 2)
      const len = a[i + 2]!
      if (len < 4 || i + len > a.length) break
      if (sig === 'NM' && len >= 5) {
        const flags = a[i + 4]!
        // CURRENT / PARENT flags name "." and "..": not file names.
        if ((flags & 0x06) === 0) name = (name ?? '') + new TextDecoder().decode(a.subarray(i + 5, i + len))
      } else if (sig === 'CE' && len >= 28) {
        const dv = new DataView(a.buffer, a.byteOffset + i, len)
        const block = dv.getUint32(4, true)
        const offset = dv.getUint32(12, true)
        const length = dv.getUint32(20, true)
        const ce = extent(block, offset + length)
        area = ce.subarray(offset)
      } else if (sig === 'ST') break
      i += len
    }
  }
  return name
}

/** The ISO 9660 name without its ";1" version and the empty extension's ".". */
function isoName(id: Uint8Array): string {
  const s = new TextDecoder('latin1').decode(id)
  return s.replace(/;\d+$/, '').replace(/\.$/, '')
}

function text(buf: Uint8Array, at: number, n: number): string {
  return Buffer.from(buf.subarray(at, at + n)).toString('latin1')
}
