// cpio "newc" (SVR4, no CRC) headers: the format of a Linux initramfs
// (Documentation/driver-api/early-userspace/buffer-format.rst; cpio(5), "New ASCII
// Format"). A header is the magic "070701" and 13 fields of 8 hexadecimal digits; the
// name (NUL-terminated) follows it, padded so that header + name end on a 4-byte
// boundary, then the file's data, padded the same way. A symbolic link's data is its
// target. The archive ends with an entry named "TRAILER!!!".

import { FormatError } from '../errors.js'

/** One archive member as the header describes it. */
export interface NewcEntry {
  name: string
  /** st_mode: type bits (S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR …) and permissions. */
  mode: number
  ino: number
  uid: number
  gid: number
  nlink: number
  mtime: number
  fileSize: number
  devMajor: number
  devMinor: number
  rdevMajor: number
  rdevMinor: number
}

/** st_mode type bits (stat(2)). */
export const S_IF = { reg: 0o100000, dir: 0o040000, lnk: 0o120000, chr: 0o020000 } as const

export const NEWC_MAGIC = '070701'
export const NEWC_TRAILER = 'TRAILER!!!'
const HEADER_BYTES = 110

// Field order of the header after the magic; c_check is always 0 in newc.
const FIELDS = [
  'ino',
  'mode',
  'uid',
  'gid',
  'nlink',
  'mtime',
  'fileSize',
  'devMajor',
  'devMinor',
  'rdevMajor',
  'rdevMinor',
  'nameSize',
  'check',
] as const
const Off = { magic: 0, fields: 6 } as const
const FIELD_DIGITS = 8

/** Bytes of padding after `n` bytes to reach a 4-byte boundary. */
export function newcPad(n: number): number {
  return (4 - (n % 4)) % 4
}

/** The header and padded name of an entry: what precedes its data. */
export function encodeNewcHeader(e: NewcEntry): Uint8Array {
  const name = new TextEncoder().encode(e.name)
  const nameSize = name.length + 1
  const values: Record<(typeof FIELDS)[number], number> = { ...e, nameSize, check: 0 }
  let text = NEWC_MAGIC
  for (const f of FIELDS) {
    const v = values[f]
    if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff)
      throw new RangeError(`encodeNewcHeader(): ${f} ${v} does not fit 8 hex digits`)
    text += v.toString(16).toUpperCase().padStart(FIELD_DIGITS, '0') // upper case, as GNU cpio writes it
  }
  const out = new Uint8Array(HEADER_BYTES + nameSize + newcPad(HEADER_BYTES + nameSize))
  out.set(new TextEncoder().encode(text), Off.magic)
  out.set(name, HEADER_BYTES)
  return out
}

/** The trailer entry that ends an archive. */
export function encodeNewcTrailer(): Uint8Array {
  return encodeNewcHeader({
    name: NEWC_TRAILER,
    mode: 0,
    ino: 0,
    uid: 0,
    gid: 0,
    nlink: 1,
    mtime: 0,
    fileSize: 0,
    devMajor: 0,
    devMinor: 0,
    rdevMajor: 0,
    rdevMinor: 0,
  })
}

/** Decodes the header at `offset`; returns the entry and where its data starts. */
export function decodeNewcHeader(bytes: Uint8Array, offset = 0): { entry: NewcEntry; dataOffset: number } {
  if (bytes.length - offset < HEADER_BYTES) {
    throw new FormatError(
      'FORMAT_CPIO',
      `Cannot read cpio header at ${offset}: ${bytes.length - offset} bytes left, ${HEADER_BYTES} needed`,
    )
  }
  const text = new TextDecoder('latin1').decode(bytes.subarray(offset, offset + HEADER_BYTES))
  const magic = text.slice(Off.magic, Off.fields)
  if (magic !== NEWC_MAGIC)
    throw new FormatError(
      'FORMAT_CPIO',
      `Cannot read cpio header at ${offset}: magic is "${magic}", expected "${NEWC_MAGIC}"`,
    )
  const v: Record<string, number> = {}
  FIELDS.forEach((f, i) => {
    const digits = text.slice(Off.fields + i * FIELD_DIGITS, Off.fields + (i + 1) * FIELD_DIGITS)
    if (!/^[0-9a-fA-F]{8}$/.test(digits))
      throw new FormatError(
        'FORMAT_CPIO',
        `Cannot read cpio header at ${offset}: ${f} is "${digits}", not 8 hex digits`,
      )
    v[f] = parseInt(digits, 16)
  })
  const nameSize = v.nameSize!
  const nameEnd = offset + HEADER_BYTES + nameSize
  if (nameSize < 1 || nameEnd > bytes.length || bytes[nameEnd - 1] !== 0) {
    throw new FormatError(
      'FORMAT_CPIO',
      `Cannot read cpio header at ${offset}: name of ${nameSize} bytes is not NUL-terminated inside the archive`,
    )
  }
  const name = new TextDecoder().decode(bytes.subarray(offset + HEADER_BYTES, nameEnd - 1))
  const entry: NewcEntry = {
    name,
    mode: v.mode!,
    ino: v.ino!,
    uid: v.uid!,
    gid: v.gid!,
    nlink: v.nlink!,
    mtime: v.mtime!,
    fileSize: v.fileSize!,
    devMajor: v.devMajor!,
    devMinor: v.devMinor!,
    rdevMajor: v.rdevMajor!,
    rdevMinor: v.rdevMinor!,
  }
  return { entry, dataOffset: nameEnd + newcPad(nameEnd) }
}
