// GUIDs as GPT stores them: UEFI 2.10 Appendix A, "EFI GUID Format". The text form
// `AABBCCDD-EEFF-GGHH-IIJJ-KKLLMMNNOOPP` maps to 16 bytes with the first three fields
// little-endian (Data1 u32, Data2 u16, Data3 u16) and the last eight bytes (Data4) as written.

import { FormatError } from '../errors.js'

/** Offsets of the EFI_GUID fields in its 16-byte encoding. */
const Off = { Data1: 0, Data2: 4, Data3: 6, Data4: 8 } as const
/** Size of an encoded GUID in bytes. */
export const GUID_SIZE = 16

const GUID_TEXT = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i

/** BIOS boot partition (GRUB core.img). */
export const GUID_BIOS_BOOT = '21686148-6449-6E6F-744E-656564454649'
/** EFI System Partition. */
export const GUID_ESP = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B'
/** Linux root (x86-64), Discoverable Partitions Specification. */
export const GUID_LINUX_ROOT_X86_64 = '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709'
/** Linux filesystem data. */
export const GUID_LINUX_DATA = '0FC63DAF-8483-4772-8E79-3D69D8477DE4'
/** Microsoft basic data (FAT/NTFS data; the cidata seed partition uses it). */
export const GUID_MS_BASIC_DATA = 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7'
/** The all-zero GUID: an unused GPT entry. */
export const GUID_ZERO = '00000000-0000-0000-0000-000000000000'

/** Whether `text` is a GUID in canonical 8-4-4-4-12 hex form (either case). */
export function isGuid(text: string): boolean {
  return GUID_TEXT.test(text)
}

/** Encodes a GUID's text form into its 16-byte mixed-endian EFI encoding. */
export function parseGuid(text: string): Uint8Array {
  const m = GUID_TEXT.exec(text)
  if (!m) {
    throw new FormatError(
      'FORMAT_GPT',
      `Cannot parse GUID: expected "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX", got "${text}"`,
    )
  }
  const out = new Uint8Array(GUID_SIZE)
  const v = new DataView(out.buffer)
  v.setUint32(Off.Data1, parseInt(m[1]!, 16), true)
  v.setUint16(Off.Data2, parseInt(m[2]!, 16), true)
  v.setUint16(Off.Data3, parseInt(m[3]!, 16), true)
  const data4 = m[4]! + m[5]!
  for (let i = 0; i < 8; i++) out[Off.Data4 + i] = parseInt(data4.slice(2 * i, 2 * i + 2), 16)
  return out
}

/** Decodes 16 bytes of EFI GUID encoding into its uppercase canonical text form. */
export function formatGuid(bytes: Uint8Array): string {
  if (bytes.length < GUID_SIZE) {
    throw new FormatError('FORMAT_GPT', `Cannot decode GUID: expected ${GUID_SIZE} bytes, got ${bytes.length}`)
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, GUID_SIZE)
  const hex = (n: number, width: number): string => n.toString(16).toUpperCase().padStart(width, '0')
  let data4 = ''
  for (let i = 0; i < 8; i++) data4 += hex(bytes[Off.Data4 + i]!, 2)
  return [
    hex(v.getUint32(Off.Data1, true), 8),
    hex(v.getUint16(Off.Data2, true), 4),
    hex(v.getUint16(Off.Data3, true), 4),
    data4.slice(0, 4),
    data4.slice(4),
  ].join('-')
}

/** A fresh random (version 4, RFC 9562) GUID in uppercase canonical form. */
export function randomGuid(): string {
  return globalThis.crypto.randomUUID().toUpperCase()
}

/** The uppercase canonical form of a GUID given in either case; throws FormatError if it is not a GUID. */
export function normalizeGuid(text: string): string {
  return formatGuid(parseGuid(text))
}
