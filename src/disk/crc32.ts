// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as GPT uses for its header and
// entry array (UEFI 2.10 §5.3.2, "CRC32 … as defined in Appendix A") and as zlib computes it.
// Table-driven, slicing-by-8: one table lookup per byte would be ~4× slower on large arrays.

const POLY = 0xedb88320

// TABLES[k][b] = CRC of byte b followed by k zero bytes; TABLES[0] is the classic table.
const TABLES: Uint32Array[] = (() => {
  const t: Uint32Array[] = Array.from({ length: 8 }, () => new Uint32Array(256))
  const t0 = t[0]!
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? POLY ^ (c >>> 1) : c >>> 1
    t0[n] = c >>> 0
  }
  for (let n = 0; n < 256; n++) {
    let c = t0[n]!
    for (let k = 1; k < 8; k++) {
      c = t0[c & 0xff]! ^ (c >>> 8)
      t[k]![n] = c >>> 0
    }
  }
  return t
})()

/**
 * The CRC-32 of `bytes`; pass the previous result as `seed` to continue over more bytes
 * (`crc32(b, crc32(a))` = `crc32(a ++ b)`). Returns an unsigned 32-bit number.
 */
export function crc32(bytes: Uint8Array, seed = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ]
  let c = ~seed >>> 0
  let i = 0
  const n = bytes.length
  const end8 = n - (n % 8)
  while (i < end8) {
    const a = (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) ^ c
    c =
      t7[a & 0xff]! ^
      t6[(a >>> 8) & 0xff]! ^
      t5[(a >>> 16) & 0xff]! ^
      t4[a >>> 24]! ^
      t3[bytes[i + 4]!]! ^
      t2[bytes[i + 5]!]! ^
      t1[bytes[i + 6]!]! ^
      t0[bytes[i + 7]!]!
    i += 8
  }
  while (i < n) c = t0[(c ^ bytes[i++]!) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}
