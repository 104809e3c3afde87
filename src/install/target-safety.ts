// Refusing targets that are in use, before anything is written: mounted (the device or a
// partition of it, directly or through device-mapper/md on top), active swap, held by
// another kernel subsystem, or carrying the running system's root file system. A regular
// file is refused when a loop device or the swap uses it. The O_EXCL open in
// TargetDevice is the kernel's own last check; these give the reason in words.

import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { DeviceError } from '../errors.js'
import { devParts, partitionsOf, readAttr, sysfsDir, SYS, type TargetInfo } from './target-info.js'

/** One reason a target cannot be written. */
export interface BusyReason {
  kind: 'mounted' | 'swap' | 'holder' | 'root' | 'loop'
  /** What, in words: `/dev/sdb1 is mounted at /boot`. */
  detail: string
}

/** One line of /proc/self/mountinfo (proc(5)). */
export interface MountInfo {
  devno: string
  mountPoint: string
  source: string
}

/** Parses /proc/self/mountinfo: field 3 is MAJ:MIN, field 5 the mount point, after " - " the type and source. */
export function parseMountinfo(text: string): MountInfo[] {
  const out: MountInfo[] = []
  for (const line of text.split('\n')) {
    const f = line.split(' ')
    const dash = f.indexOf('-')
    if (f.length < 7 || dash < 6) continue
    out.push({ devno: f[2]!, mountPoint: unescapeOctal(f[4]!), source: unescapeOctal(f[dash + 2] ?? '') })
  }
  return out
}

/** Parses /proc/swaps: the Filename column (paths are octal-escaped like mountinfo). */
export function parseSwaps(text: string): string[] {
  return text
    .split('\n')
    .slice(1)
    .map((l) => l.split(/\s+/)[0] ?? '')
    .filter(Boolean)
    .map(unescapeOctal)
}

const unescapeOctal = (s: string): string =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))

/** A block device and everything stacked on it: its partitions and, recursively, their holders. */
async function stackOf(devno: string): Promise<Array<{ name: string; devno: string; via?: string }>> {
  const out: Array<{ name: string; devno: string; via?: string }> = []
  const seen = new Set<string>()
  const visit = async (dir: string, via?: string): Promise<void> => {
    const name = path.basename(dir)
    if (seen.has(name)) return
    seen.add(name)
    const dev = await readAttr(path.join(dir, 'dev'))
    if (dev) out.push({ name, devno: dev, ...(via ? { via } : {}) })
    for (const p of await partitionsOf(dir)) await visit(path.join(dir, p), via)
    for (const h of await fsp.readdir(path.join(dir, 'holders')).catch(() => [] as string[])) {
      const hdir = await fsp.realpath(path.join(dir, 'holders', h)).catch(() => undefined)
      if (hdir) await visit(hdir, via ?? name)
    }
  }
  const dir = await sysfsDir(devno)
  if (dir) await visit(dir)
  return out
}

/** The whole disks under a block device: itself, or the disks of its partitions and of the devices a dm/md device sits on. */
async function disksUnder(devno: string): Promise<Set<string>> {
  const out = new Set<string>()
  const visit = async (dir: string): Promise<void> => {
    const slaves = await fsp.readdir(path.join(dir, 'slaves')).catch(() => [] as string[])
    if (slaves.length === 0) {
      const disk = (await readAttr(path.join(dir, 'partition'))) !== undefined ? path.dirname(dir) : dir
      const dev = await readAttr(path.join(disk, 'dev'))
      if (dev) out.add(dev)
      return
    }
    for (const s of slaves) {
      const sdir = await fsp.realpath(path.join(dir, 'slaves', s)).catch(() => undefined)
      if (sdir) await visit(sdir)
    }
  }
  const dir = await sysfsDir(devno)
  if (dir) await visit(dir)
  return out
}

/** Every reason the target is in use right now (empty: safe to write). */
export async function findBusy(
  target: TargetInfo,
  files = { mountinfo: '/proc/self/mountinfo', swaps: '/proc/swaps' },
): Promise<BusyReason[]> {
  const mounts = parseMountinfo(await fsp.readFile(files.mountinfo, 'utf8').catch(() => ''))
  const swaps = parseSwaps(await fsp.readFile(files.swaps, 'utf8').catch(() => ''))
  const reasons: BusyReason[] = []
  if (target.kind === 'file') return await fileBusy(target, mounts, swaps)

  const devno = target.devno!
  const rootDev = await fsp.stat('/').then(
    (s) => devParts(s.dev),
    () => undefined,
  )
  if (rootDev) {
    const rootDisks = await disksUnder(`${rootDev.major}:${rootDev.minor}`)
    const targetDisk = target.isPartition ? await disksUnder(devno) : new Set([devno])
    for (const d of targetDisk) {
      if (rootDisks.has(d))
        reasons.push({ kind: 'root', detail: `"${target.path}" holds the running system's root file system` })
    }
  }
  const stack = await stackOf(devno)
  const byDevno = new Map(stack.map((s) => [s.devno, s]))
  for (const m of mounts) {
    const s = byDevno.get(m.devno)
    if (s)
      reasons.push({
        kind: 'mounted',
        detail: `/dev/${s.name}${s.via ? ` (on ${s.via})` : ''} is mounted at ${m.mountPoint}`,
      })
  }
  for (const sw of swaps) {
    const st = await fsp.stat(sw).catch(() => undefined)
    if (!st?.isBlockDevice()) continue
    const { major, minor } = devParts(st.rdev)
    const s = byDevno.get(`${major}:${minor}`)
    if (s)
      reasons.push({
        kind: 'swap',
        detail: `/dev/${s.name} is active swap${sw === `/dev/${s.name}` ? '' : ` (as ${sw})`}`,
      })
  }
  // Holders: device-mapper (LVM, LUKS, multipath) or md arrays built on the target or its partitions.
  for (const s of stack) {
    if (!s.via) continue
    const dmName = await readAttr(path.join(SYS.root, 'class/block', s.name, 'dm/name'))
    reasons.push({ kind: 'holder', detail: `/dev/${s.name}${dmName ? ` (${dmName})` : ''} is built on ${s.via}` })
  }
  return reasons
}

async function fileBusy(target: TargetInfo, mounts: MountInfo[], swaps: string[]): Promise<BusyReason[]> {
  const reasons: BusyReason[] = []
  const id = target.fileId!
  for (const sw of swaps) {
    const st = await fsp.stat(sw).catch(() => undefined)
    if (st?.isFile() && st.dev === id.dev && st.ino === id.ino)
      reasons.push({ kind: 'swap', detail: `"${target.path}" is an active swap file` })
  }
  for (const loop of await fsp.readdir(path.join(SYS.root, 'block')).catch(() => [] as string[])) {
    if (!loop.startsWith('loop')) continue
    const backing = await readAttr(path.join(SYS.root, 'block', loop, 'loop/backing_file'))
    if (!backing) continue
    const st = await fsp.stat(backing).catch(() => undefined)
    if (st && st.dev === id.dev && st.ino === id.ino) {
      const dev = await readAttr(path.join(SYS.root, 'block', loop, 'dev'))
      const mounted = mounts.filter((m) => m.devno === dev).map((m) => m.mountPoint)
      reasons.push({
        kind: 'loop',
        detail: `"${target.path}" backs /dev/${loop}${mounted.length ? `, mounted at ${mounted.join(', ')}` : ''}`,
      })
    }
  }
  return reasons
}

/** Throws DEVICE_BUSY naming every reason, or returns when the target is free. */
export function assertNotBusy(target: TargetInfo, reasons: BusyReason[]): void {
  if (reasons.length === 0) return
  const hint = reasons.some((r) => r.kind === 'root')
    ? 'this is the disk the running system uses: boot a deploy environment (or choose another disk) to install onto it'
    : reasons.some((r) => r.kind === 'loop')
      ? 'install onto the loop device instead, or detach it with `losetup -d`'
      : 'unmount it, swapoff, stop what holds it (vgchange -an, dmsetup remove, mdadm --stop), then retry'
  throw new DeviceError(
    'DEVICE_BUSY',
    `Cannot install onto "${target.path}": ${reasons.map((r) => r.detail).join('; ')}`,
    { hint },
  )
}

/**
 * Why the source cannot be read while the target is written, if it cannot: the target is
 * the source file itself (same inode), a loop device backed by it, or a disk whose file
 * system (the device, a partition, or something stacked on it) holds the source. Installing
 * an image onto itself would zero or punch the very bytes it is about to read.
 */
export async function findSourceConflict(target: TargetInfo, sourcePath: string): Promise<string | undefined> {
  const st = await fsp.stat(sourcePath).catch(() => undefined)
  if (!st?.isFile()) return undefined
  if (target.kind === 'file') {
    const id = target.fileId!
    return st.dev === id.dev && st.ino === id.ino ? `"${target.path}" is the source file itself` : undefined
  }
  const stack = await stackOf(target.devno!)
  for (const s of stack) {
    const backing = await readAttr(path.join(SYS.root, 'block', s.name, 'loop/backing_file'))
    const b = backing ? await fsp.stat(backing).catch(() => undefined) : undefined
    if (b && b.dev === st.dev && b.ino === st.ino)
      return `/dev/${s.name} is a loop device over the source file "${sourcePath}"`
  }
  const { major, minor } = devParts(st.dev)
  const holder = stack.find((s) => s.devno === `${major}:${minor}`)
  if (holder)
    return `the source "${sourcePath}" is stored on /dev/${holder.name}${holder.name === target.name ? '' : `, part of "${target.path}"`}`
  return undefined
}
