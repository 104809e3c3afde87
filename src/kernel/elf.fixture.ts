// Test fixtures: tiny ELF64 little-endian files built in memory, enough for
// depmod/modinfo (a module: .modinfo, .symtab, __ksymtab_strings) and for
// exportedSymbols() (a vmlinux: __ksymtab with PREL32 entries). Used by tests only.

/** One section of a fixture ELF file. */
export interface FixtureSection {
  name: string
  type: number
  data: Uint8Array
  addr?: bigint
  link?: number
  info?: number
  entsize?: number
  flags?: bigint
}

const SHT = { progbits: 1, symtab: 2, strtab: 3 } as const

/** Lays out an ELF64 LE file: header, section data, section header table, .shstrtab last. */
export function buildElf(sections: readonly FixtureSection[], type = 1): Uint8Array {
  const names = ['', ...sections.map((s) => s.name), '.shstrtab']
  const shstr = strtab(names)
  const all = [...sections, { name: '.shstrtab', type: SHT.strtab, data: shstr.bytes }]
  let offset = 64
  const offsets: number[] = []
  for (const s of all) {
    offset = align(offset, 8)
    offsets.push(offset)
    offset += s.data.length
  }
  const shoff = align(offset, 8)
  const shnum = all.length + 1
  const out = new Uint8Array(shoff + shnum * 64)
  const v = new DataView(out.buffer)
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0)
  v.setUint16(16, type, true) // ET_REL for modules, ET_EXEC for vmlinux
  v.setUint16(18, 62, true) // EM_X86_64
  v.setUint32(20, 1, true)
  v.setBigUint64(0x28, BigInt(shoff), true)
  v.setUint16(0x34, 64, true)
  v.setUint16(0x3a, 64, true)
  v.setUint16(0x3c, shnum, true)
  v.setUint16(0x3e, shnum - 1, true)
  all.forEach((s, i) => {
    out.set(s.data, offsets[i]!)
    const at = shoff + (i + 1) * 64
    v.setUint32(at, shstr.offsets[i + 1]!, true)
    v.setUint32(at + 4, s.type, true)
    v.setBigUint64(at + 8, 'flags' in s && s.flags !== undefined ? s.flags : 0n, true)
    v.setBigUint64(at + 16, 'addr' in s && s.addr !== undefined ? s.addr : 0n, true)
    v.setBigUint64(at + 24, BigInt(offsets[i]!), true)
    v.setBigUint64(at + 32, BigInt(s.data.length), true)
    v.setUint32(at + 40, ('link' in s && s.link) || 0, true)
    v.setUint32(at + 44, ('info' in s && s.info) || 0, true)
    v.setBigUint64(at + 48, 1n, true)
    v.setBigUint64(at + 56, BigInt(('entsize' in s && s.entsize) || 0), true)
  })
  return out
}

/**
 * A loadable-module-shaped ELF: `.modinfo` (name, license, aliases, firmware,
 * depends), exported symbols in __ksymtab_strings, undefined symbols in .symtab.
 */
export function buildModuleElf(m: {
  name: string
  exports?: string[]
  needs?: string[]
  aliases?: string[]
  firmware?: string[]
}): Uint8Array {
  const info = [
    `name=${m.name}`,
    'license=GPL',
    'vermagic=6.1.0-test SMP mod_unload',
    ...(m.aliases ?? []).map((a) => `alias=${a}`),
    ...(m.firmware ?? []).map((f) => `firmware=${f}`),
  ]
  const syms = strtab(['', ...(m.needs ?? []), ...(m.exports ?? []).map((e) => `__ksymtab_${e}`)])
  const symtab = new Uint8Array(24 * (1 + (m.needs?.length ?? 0)))
  const sv = new DataView(symtab.buffer)
  ;(m.needs ?? []).forEach((_, i) => {
    const at = 24 * (i + 1)
    sv.setUint32(at, syms.offsets[i + 1]!, true)
    symtab[at + 4] = 0x10 // STB_GLOBAL, STT_NOTYPE; st_shndx 0 = SHN_UNDEF
  })
  const enc = new TextEncoder()
  const sections: FixtureSection[] = [
    { name: '.modinfo', type: SHT.progbits, data: enc.encode(info.join('\0') + '\0'), flags: 2n },
    {
      name: '__ksymtab_strings',
      type: SHT.progbits,
      data: enc.encode((m.exports ?? []).map((e) => e + '\0').join('')),
      flags: 2n,
    },
    { name: '.strtab', type: SHT.strtab, data: syms.bytes },
  ]
  sections.push({ name: '.symtab', type: SHT.symtab, data: symtab, link: 3, info: 1, entsize: 24 })
  return buildElf(sections)
}

/** A vmlinux-shaped ELF exporting `names` through PREL32 __ksymtab entries. */
export function buildVmlinuxElf(names: string[], gplNames: string[] = []): Uint8Array {
  const base = 0xffffffff82000000n
  const strings = strtab(names.concat(gplNames), false)
  const stringsAddr = base + 0x100000n
  const table = (list: string[], tableAddr: bigint, firstIndex: number) => {
    const bytes = new Uint8Array(12 * list.length)
    const v = new DataView(bytes.buffer)
    list.forEach((_, i) => {
      const nameAddr = stringsAddr + BigInt(strings.offsets[firstIndex + i]!)
      const fieldAddr = tableAddr + BigInt(i * 12 + 4)
      v.setInt32(i * 12 + 4, Number(nameAddr - fieldAddr), true)
    })
    return bytes
  }
  return buildElf(
    [
      { name: '__ksymtab', type: SHT.progbits, data: table(names, base, 0), addr: base },
      {
        name: '__ksymtab_gpl',
        type: SHT.progbits,
        data: table(gplNames, base + 0x80000n, names.length),
        addr: base + 0x80000n,
      },
      { name: '__ksymtab_strings', type: SHT.progbits, data: strings.bytes, addr: stringsAddr },
    ],
    2,
  )
}

// A NUL-separated string table and each string's offset; the first string is empty when `leadingNul`.
function strtab(list: string[], leadingNul = true): { bytes: Uint8Array; offsets: number[] } {
  const enc = new TextEncoder()
  const parts: Uint8Array[] = []
  const offsets: number[] = []
  let at = 0
  for (const s of list) {
    if (!leadingNul && s === '') continue
    offsets.push(at)
    const b = enc.encode(s + '\0')
    parts.push(b)
    at += b.length
  }
  const bytes = new Uint8Array(at)
  let p = 0
  for (const b of parts) {
    bytes.set(b, p)
    p += b.length
  }
  return { bytes, offsets }
}

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a
}
