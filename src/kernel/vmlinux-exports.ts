// The symbols a kernel image exports to modules, read from the image itself.
// Debian's linux-image packages ship a stub /boot/System.map ("The real System.map
// is in the linux-image-<version>-dbg package"), so depmod -F cannot use it; the
// export table is inside vmlinuz instead.
//
// bzImage: Documentation/arch/x86/boot.rst. The protected-mode code starts at
// (setup_sects + 1) * 512 (setup_sects 0 means 4); from boot protocol 2.08 the
// setup header gives payload_offset and payload_length of the compressed vmlinux
// relative to it. The build appends the uncompressed size as 4 bytes after the
// compressed stream (scripts/Makefile.lib, size_append).
//
// vmlinux: ELF64 little-endian. __ksymtab and __ksymtab_gpl hold struct
// kernel_symbol; on x86-64 (CONFIG_HAVE_ARCH_PREL32_RELOCATIONS) each is three
// int32 offsets {value, name, namespace}, relative to the field's own address
// (include/linux/export.h). Names live in __ksymtab_strings, a merged string
// section: the linker shares tails ("kmalloc" inside "__kmalloc"), so the names
// must be found through the offsets, not by splitting that section at NULs.

import { FormatError } from '../errors.js'

/** Compressions a bzImage payload may use; only the first three can be unpacked here. */
export type PayloadCompression = 'xz' | 'zstd' | 'gzip' | 'lzma' | 'bzip2' | 'lz4' | 'lzo'

/** Where the compressed vmlinux sits inside a bzImage. */
export interface BzImagePayload {
  offset: number
  /** The compressed stream, without the 4-byte size the build appends. */
  length: number
  compression: PayloadCompression
}

const Hdr = { setupSects: 0x1f1, magic: 0x202, version: 0x206, payloadOffset: 0x248, payloadLength: 0x24c } as const
const HDRS = 0x53726448 // "HdrS"
const MAGICS: [PayloadCompression, number[]][] = [
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['gzip', [0x1f, 0x8b]],
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['lz4', [0x02, 0x21, 0x4c, 0x18]],
  ['lzo', [0x89, 0x4c, 0x5a, 0x4f]],
  ['lzma', [0x5d, 0x00, 0x00]],
]

/** Finds the compressed vmlinux in a bzImage (x86 boot protocol ≥ 2.08). */
export function locateBzImagePayload(image: Uint8Array, what = 'vmlinuz'): BzImagePayload {
  if (image.length < Hdr.payloadLength + 4)
    throw new FormatError('FORMAT_KERNEL', `Cannot read ${what}: ${image.length} bytes is too short for a bzImage`)
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength)
  const magic = v.getUint32(Hdr.magic, true)
  if (magic !== HDRS)
    throw new FormatError(
      'FORMAT_KERNEL',
      `Cannot read ${what}: no "HdrS" setup header (found 0x${magic.toString(16)})`,
    )
  const version = v.getUint16(Hdr.version, true)
  if (version < 0x208)
    throw new FormatError(
      'FORMAT_KERNEL',
      `Cannot read ${what}: boot protocol ${version >> 8}.${version & 0xff} has no payload fields (need 2.08)`,
    )
  const setupSects = image[Hdr.setupSects] || 4
  const offset = (setupSects + 1) * 512 + v.getUint32(Hdr.payloadOffset, true)
  const total = v.getUint32(Hdr.payloadLength, true)
  if (total <= 4 || offset + total > image.length) {
    throw new FormatError(
      'FORMAT_KERNEL',
      `Cannot read ${what}: payload at ${offset} of ${total} bytes runs past the end (${image.length})`,
    )
  }
  const compression = MAGICS.find(([, m]) => m.every((b, i) => image[offset + i] === b))?.[0]
  if (!compression) throw new FormatError('FORMAT_KERNEL', `Cannot read ${what}: payload compression not recognised`)
  return { offset, length: total - 4, compression }
}

interface Section {
  name: string
  addr: bigint
  offset: number
  size: number
}

const Elf = { class: 4, data: 5, shoff: 0x28, shentsize: 0x3a, shnum: 0x3c, shstrndx: 0x3e } as const
const Shdr = { name: 0, addr: 16, offset: 24, size: 32 } as const
const KSYM_PREL32 = 12
const KSYM_ABS64 = 24

/** The names of every symbol an ELF64 vmlinux exports (__ksymtab and __ksymtab_gpl), sorted. */
export function exportedSymbols(elf: Uint8Array, what = 'vmlinux'): string[] {
  const sections = elfSections(elf, what)
  const strings = sections.get('__ksymtab_strings')
  if (!strings) throw new FormatError('FORMAT_KERNEL', `Cannot read exports of ${what}: no __ksymtab_strings section`)
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength)
  const names = new Set<string>()
  const decoder = new TextDecoder()
  const nameAt = (addr: bigint): string | undefined => {
    const rel = addr - strings.addr
    if (rel < 0n || rel >= BigInt(strings.size)) return undefined
    const start = strings.offset + Number(rel)
    let end = start
    while (end < strings.offset + strings.size && elf[end] !== 0) end++
    return decoder.decode(elf.subarray(start, end))
  }
  for (const table of ['__ksymtab', '__ksymtab_gpl']) {
    const s = sections.get(table)
    if (!s || s.size === 0) continue
    const found = readTable(v, s, nameAt, KSYM_PREL32) ?? readTable(v, s, nameAt, KSYM_ABS64)
    if (!found)
      throw new FormatError(
        'FORMAT_KERNEL',
        `Cannot read exports of ${what}: ${table} entries do not point into __ksymtab_strings`,
      )
    for (const n of found) names.add(n)
  }
  return [...names].sort()
}

// Reads one table with one entry layout; undefined when an entry's name falls outside the strings.
function readTable(
  v: DataView,
  s: Section,
  nameAt: (a: bigint) => string | undefined,
  entry: number,
): string[] | undefined {
  if (s.size % entry !== 0) return undefined
  const out: string[] = []
  for (let i = 0; i < s.size / entry; i++) {
    const at = s.offset + i * entry
    const addr =
      entry === KSYM_PREL32
        ? s.addr + BigInt(i * entry + 4) + BigInt(v.getInt32(at + 4, true))
        : v.getBigUint64(at + 8, true)
    const name = nameAt(addr)
    if (name === undefined || name === '') return undefined
    out.push(name)
  }
  return out
}

function elfSections(elf: Uint8Array, what: string): Map<string, Section> {
  const isElf = elf.length >= 64 && elf[0] === 0x7f && elf[1] === 0x45 && elf[2] === 0x4c && elf[3] === 0x46
  if (!isElf) throw new FormatError('FORMAT_KERNEL', `Cannot read ${what}: not an ELF file`)
  if (elf[Elf.class] !== 2 || elf[Elf.data] !== 1)
    throw new FormatError('FORMAT_KERNEL', `Cannot read ${what}: not a 64-bit little-endian ELF file`)
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength)
  const shoff = Number(v.getBigUint64(Elf.shoff, true))
  const shentsize = v.getUint16(Elf.shentsize, true)
  const shnum = v.getUint16(Elf.shnum, true)
  const shstrndx = v.getUint16(Elf.shstrndx, true)
  if (shentsize < 64 || shoff + shnum * shentsize > elf.length || shstrndx >= shnum) {
    throw new FormatError('FORMAT_KERNEL', `Cannot read ${what}: section header table out of range`)
  }
  const raw = Array.from({ length: shnum }, (_, i) => {
    const at = shoff + i * shentsize
    return {
      nameOff: v.getUint32(at + Shdr.name, true),
      addr: v.getBigUint64(at + Shdr.addr, true),
      offset: Number(v.getBigUint64(at + Shdr.offset, true)),
      size: Number(v.getBigUint64(at + Shdr.size, true)),
    }
  })
  const strtab = raw[shstrndx]!
  const decoder = new TextDecoder()
  const out = new Map<string, Section>()
  for (const r of raw) {
    const start = strtab.offset + r.nameOff
    let end = start
    while (end < elf.length && elf[end] !== 0) end++
    const name = decoder.decode(elf.subarray(start, end))
    if (r.offset + r.size > elf.length && name.startsWith('__ksymtab')) {
      throw new FormatError('FORMAT_KERNEL', `Cannot read ${what}: section ${name} runs past the end`)
    }
    out.set(name, { name, addr: r.addr, offset: r.offset, size: r.size })
  }
  return out
}

/** A System.map that depmod -F reads: one `ADDR R __ksymtab_NAME` line per export (kmod depmod.c, depmod_load_system_map). */
export function renderSystemMap(names: Iterable<string>): string {
  let out = ''
  for (const n of names) out += `0000000000000000 R __ksymtab_${n}\n`
  return out
}
