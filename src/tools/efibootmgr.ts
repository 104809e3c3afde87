// efibootmgr (efibootmgr(8), version 17): the UEFI boot entries the deploy agent writes
// after an install, through efivarfs. The entry is made with --create-only (not put in
// BootOrder, which keeps the network first so that an operator's redeploy reaches the
// machine) and chosen for the next boot with --bootnext; an older entry of the same label
// (a previous deploy) is deleted first, so redeploys do not pile entries up.

import { run } from './run.js'

/** One Boot#### variable as `efibootmgr` lists it. */
export interface BootEntry {
  /** Four hex digits, "0004". */
  bootnum: string
  label: string
  active: boolean
}

/** What the boot entry points at. */
export interface BootEntrySpec {
  /** The whole disk holding the ESP: "/dev/sda". */
  disk: string
  /** The ESP's partition number. */
  part: number
  label: string
  /** The loader's path on the ESP, backslashes: "\\EFI\\debian\\shimx64.efi". */
  loader: string
}

/** argv listing the boot entries. */
export function efibootmgrListArgv(): string[] {
  return ['efibootmgr']
}

/** argv creating an entry without adding it to BootOrder. */
export function efibootmgrCreateArgv(spec: BootEntrySpec): string[] {
  return [
    'efibootmgr',
    '--create-only',
    '--disk',
    spec.disk,
    '--part',
    String(spec.part),
    '--label',
    spec.label,
    '--loader',
    spec.loader,
  ]
}

/** argv deleting Boot<bootnum>. */
export function efibootmgrDeleteArgv(bootnum: string): string[] {
  return ['efibootmgr', '--bootnum', bootnum, '--delete-bootnum']
}

/** argv setting BootNext. */
export function efibootmgrBootNextArgv(bootnum: string): string[] {
  return ['efibootmgr', '--bootnext', bootnum]
}

/** The Boot#### lines of efibootmgr's output ("Boot0004* debian\tHD(…)…"). */
export function parseBootEntries(text: string): BootEntry[] {
  const out: BootEntry[] = []
  for (const line of text.split('\n')) {
    const m = /^Boot([0-9A-Fa-f]{4})(\*?)\s+([^\t]*)/.exec(line)
    if (m) out.push({ bootnum: m[1]!.toUpperCase(), active: m[2] === '*', label: m[3]!.trim() })
  }
  return out
}

/** Replaces any entry labelled `spec.label` with a new one and makes it BootNext; returns its number. */
export async function setBootNextEntry(spec: BootEntrySpec, opts: { signal?: AbortSignal } = {}): Promise<string> {
  const o = opts.signal ? { signal: opts.signal } : {}
  for (const e of parseBootEntries((await run(efibootmgrListArgv(), o)).stdout))
    if (e.label === spec.label) await run(efibootmgrDeleteArgv(e.bootnum), o)
  const created = parseBootEntries((await run(efibootmgrCreateArgv(spec), o)).stdout).find(
    (e) => e.label === spec.label,
  )
  const bootnum =
    created?.bootnum ??
    parseBootEntries((await run(efibootmgrListArgv(), o)).stdout).find((e) => e.label === spec.label)?.bootnum
  if (bootnum === undefined) throw new Error(`efibootmgr listed no entry "${spec.label}" after creating it`)
  await run(efibootmgrBootNextArgv(bootnum), o)
  return bootnum
}
