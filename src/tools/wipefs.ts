// wipefs (util-linux): the signatures libblkid finds on a device or file — partition
// tables (gpt, PMBR, dos), file systems, RAID members, LVM PVs, LUKS headers — listed,
// never erased (no -a/-o: wipefs(8) only prints them). It probes the whole-device level:
// both GPT headers (the backup at the device's last LBA too), not what is inside partitions.

import { run } from './run.js'

/** One signature on a device, as wipefs reports it. */
export interface Signature {
  /** What it is: "gpt", "PMBR", "dos", "ext4", "vfat", "linux_raid_member", "LVM2_member", "crypto_LUKS", "swap" … */
  type: string
  /** Byte offset of the magic on the device. */
  offset: number
  label?: string
  uuid?: string
}

/** wipefs argv listing the signatures of `device` as JSON, writing nothing. */
export function wipefsArgv(device: string): string[] {
  return ['wipefs', '--no-act', '--json', device]
}

/** Parses `wipefs --json` output (an empty output means no signatures). */
export function parseWipefs(text: string): Signature[] {
  if (text.trim() === '') return []
  const doc = JSON.parse(text) as {
    signatures?: Array<{ type?: string; offset?: string; label?: string | null; uuid?: string | null }>
  }
  return (doc.signatures ?? []).map((s) => ({
    type: s.type ?? 'unknown',
    offset: Number(s.offset ?? 0),
    ...(s.label ? { label: s.label } : {}),
    ...(s.uuid ? { uuid: s.uuid } : {}),
  }))
}

/** The signatures on a device or file. */
export async function listSignatures(device: string, opts: { signal?: AbortSignal } = {}): Promise<Signature[]> {
  const r = await run(wipefsArgv(device), opts.signal ? { signal: opts.signal } : {})
  return parseWipefs(r.stdout)
}

/** "ext4 \"data\"" / "gpt at byte 512": a signature in words. */
export function describeSignature(s: Signature): string {
  return `${s.type}${s.label ? ` "${s.label}"` : ''} at byte ${s.offset}`
}
