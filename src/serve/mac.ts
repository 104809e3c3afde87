// MAC addresses as serve keys them: lowercase, colon-separated ("52:54:00:12:34:56").
// Firmware and tools write them in other ways: iPXE's ${net0/mac} with colons, GRUB's
// per-MAC config names with dashes (GRUB manual, "Network"), PXELINUX with "01-" in front.

const MAC_RE = /^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$/i

/** "52-54-00-12-34-56", "525400123456", "52:54:00:12:34:56" → "52:54:00:12:34:56"; undefined if not a MAC. */
export function normalizeMac(text: string): string | undefined {
  const t = text.trim()
  if (!MAC_RE.test(t)) return undefined
  const hex = t.replace(/[:-]/g, '').toLowerCase()
  return hex.match(/../g)!.join(':')
}

/** "52:54:00:12:34:56" → "52-54-00-12-34-56", as GRUB names per-MAC config files. */
export function macWithDashes(mac: string): string {
  return mac.replace(/:/g, '-')
}
