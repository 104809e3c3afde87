// Reproducible builds: what makes two builds of one spec, from the same package versions,
// the same bytes (https://reproducible-builds.org/docs/).
//
// - Identifiers (root filesystem UUID and hash seed, ESP volume id, disk and partition
//   GUIDs) are derived from the spec's digest and hwimage's version, not drawn at random.
// - SOURCE_DATE_EPOCH is the newest package's time: the newest mtime of the packages'
//   /usr/share/doc/*/changelog*.gz (Debian's packaging sets every file's mtime from the
//   changelog's date), or the spec's `source_date_epoch`. Every later step gets it:
//   mkinitramfs (sorted cpio, clamped mtimes), mkfs.ext4 (E2FSPROGS_FAKE_TIME),
//   mkfs.vfat (--invariant) and mtools (SOURCE_DATE_EPOCH).
// - The tree is normalised before the file systems are made: logs and caches that
//   record the build's time removed, /etc/shadow's "last changed" days set to the
//   epoch's day, the host's /etc/resolv.conf removed (dhclient writes it on the
//   machine), and every mtime newer than the epoch clamped to it.
// - mke2fs -d copies each file's ctime from the tree (the time of the build); a
//   debugfs pass sets ctime and atime of every inode to the epoch. mke2fs adds a
//   directory's entries in sorted order (scandir with alphasort), so directory order
//   does not depend on the build host's file system.
// - Machine-specific files are never in the image: /etc/machine-id empty, no D-Bus
//   machine id, no SSH host keys, no random seed (customize-script.ts); systemd,
//   cloud-init and systemd-random-seed make them on first boot.

import { createHash } from 'node:crypto'
import { lstat, lutimes, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run } from '../tools/run.js'
import type { BuildSpec } from './spec.js'

/** Identifiers an image is given, fixed by its inputs. */
export interface DerivedIds {
  rootUuid: string
  /** ext4 directory hash seed (a UUID). */
  rootHashSeed: string
  espVolumeId: string
  diskGuid: string
  /** Partition number → unique partition GUID. */
  partitionGuids: Record<number, string>
}

/**
 * SHA-256 (hex) of the spec as validated (every default filled in), keys sorted, without
 * `cache` (where the build host keeps packages changes nothing in the image).
 */
export function specDigest(spec: BuildSpec): string {
  return createHash('sha256')
    .update(canonicalJson({ ...spec, cache: undefined }))
    .digest('hex')
}

/** JSON with object keys sorted at every level: one text for one value. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`
  return JSON.stringify(v)
}

/**
 * A name-based UUID (RFC 9562 version 8, variant 10) from SHA-256 of `seed` and `what`:
 * the same inputs give the same UUID, different `what`s different ones.
 */
export function derivedUuid(seed: string, what: string): string {
  const b = createHash('sha256').update(`hwimage:${seed}:${what}`).digest()
  b[6] = (b[6]! & 0x0f) | 0x80
  b[8] = (b[8]! & 0x3f) | 0x80
  const h = b.subarray(0, 16).toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`
}

/** The identifiers of a build of `spec` by hwimage `version`. */
export function deriveIds(spec: BuildSpec, version: string): DerivedIds {
  const seed = `${version}:${specDigest(spec)}`
  const vol = createHash('sha256').update(`hwimage:${seed}:esp-volume-id`).digest('hex').slice(0, 8).toUpperCase()
  return {
    rootUuid: derivedUuid(seed, 'root-uuid'),
    rootHashSeed: derivedUuid(seed, 'root-hash-seed'),
    espVolumeId: `${vol.slice(0, 4)}-${vol.slice(4)}`,
    diskGuid: derivedUuid(seed, 'disk-guid').toUpperCase(),
    partitionGuids: Object.fromEntries(
      [1, 14, 15].map((n) => [n, derivedUuid(seed, `partition-${n}`).toUpperCase()]),
    ) as Record<number, string>,
  }
}

/** The newest package's time in a tree (seconds): the newest mtime of /usr/share/doc/*\/changelog*.gz. */
export async function newestPackageEpoch(rootDir: string): Promise<number> {
  const doc = join(rootDir, 'usr/share/doc')
  let newest = 0
  for (const pkg of await readdir(doc)) {
    let names: string[]
    try {
      names = await readdir(join(doc, pkg))
    } catch {
      continue // a symlink to another package's directory, or a file
    }
    for (const n of names) {
      if (!/^changelog(\.Debian)?\.gz$/.test(n)) continue
      const s = await lstat(join(doc, pkg, n))
      if (s.isFile()) newest = Math.max(newest, Math.floor(s.mtimeMs / 1000))
    }
  }
  if (newest === 0) throw new Error(`no package changelog under ${doc}: cannot date the build`)
  return newest
}

/** Files that record when or where the tree was made, removed from every image. */
export const BUILD_RECORDS = [
  // dpkg, apt and update-alternatives logs (mmdebstrap removes these when SOURCE_DATE_EPOCH is set).
  'var/log/dpkg.log',
  'var/log/alternatives.log',
  'var/log/apt/history.log',
  'var/log/apt/term.log',
  'var/log/apt/eipp.log.xz',
  // ldconfig's cache of the inodes and mtimes it saw.
  'var/cache/ldconfig/aux-cache',
  // The build host's resolver, copied in by mmdebstrap; dhclient writes the machine's.
  'etc/resolv.conf',
  // A random seed must never be shared: systemd-random-seed makes one on first boot.
  'var/lib/systemd/random-seed',
] as const

/** Normalises a finished tree for SOURCE_DATE_EPOCH `epoch` (see the header). */
export async function normaliseTree(rootDir: string, epoch: number): Promise<void> {
  for (const f of BUILD_RECORDS) await rm(join(rootDir, f), { force: true })
  for (const f of ['etc/shadow', 'etc/shadow-']) await setShadowLastChange(join(rootDir, f), epoch)
  await clampMtimes(rootDir, epoch)
}

/** /etc/shadow with every "last password change" day set to the epoch's day (as useradd does under SOURCE_DATE_EPOCH). */
export function shadowWithLastChange(text: string, epoch: number): string {
  const day = String(Math.floor(epoch / 86400))
  return text
    .split('\n')
    .map((line) => {
      const f = line.split(':')
      // name:password:lastchg:min:max:warn:inactive:expire:reserved; an empty lastchg means "not aging".
      if (f.length < 9 || !/^\d+$/.test(f[2]!)) return line
      f[2] = day
      return f.join(':')
    })
    .join('\n')
}

async function setShadowLastChange(path: string, epoch: number): Promise<void> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return
    throw e
  }
  const next = shadowWithLastChange(text, epoch)
  if (next !== text) await writeFile(path, next)
}

/** Sets every mtime (files, directories, symlinks) newer than `epoch` to it; children before their directory. */
export async function clampMtimes(dir: string, epoch: number): Promise<number> {
  let clamped = 0
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) await walk(p)
      const s = await lstat(p)
      if (s.mtimeMs > epoch * 1000) {
        await lutimes(p, epoch, epoch)
        clamped++
      }
    }
  }
  await walk(dir)
  const s = await lstat(dir)
  if (s.mtimeMs > epoch * 1000) await lutimes(dir, epoch, epoch)
  return clamped
}

/** debugfs commands setting ctime and atime of the used inodes of an ext4 file system (from dumpe2fs's free-inode lists). */
export function inodeTimeCommands(dumpe2fs: string, epoch: number): string[] {
  const perGroup = Number(/^Inodes per group:\s+(\d+)$/m.exec(dumpe2fs)?.[1])
  const count = Number(/^Inode count:\s+(\d+)$/m.exec(dumpe2fs)?.[1])
  if (!perGroup || !count) throw new Error('dumpe2fs printed no inode count or inodes per group')
  const free = new Set<number>()
  const lists = [...dumpe2fs.matchAll(/^\s+Free inodes: ?(.*)$/gm)].map((m) => m[1]!.trim())
  if (lists.length !== Math.ceil(count / perGroup))
    throw new Error(`dumpe2fs listed ${lists.length} groups' free inodes, expected ${Math.ceil(count / perGroup)}`)
  for (const list of lists) {
    for (const r of list.split(',').map((x) => x.trim())) {
      if (!r) continue
      const [a, b] = r.split('-').map(Number)
      for (let i = a!; i <= (b ?? a)!; i++) free.add(i)
    }
  }
  const cmds: string[] = []
  for (let i = 1; i <= count; i++) {
    if (free.has(i)) continue
    cmds.push(`sif <${i}> ctime @${epoch}`, `sif <${i}> atime @${epoch}`)
  }
  return cmds
}

/**
 * Sets ctime and atime of every used inode of the ext4 file system at `offset` of `image`
 * to `epoch` (mke2fs -d took ctime from the tree: the time of the build).
 */
export async function fixExt4InodeTimes(
  image: string,
  offset: number,
  epoch: number,
  signal?: AbortSignal,
): Promise<number> {
  const dev = `${image}?offset=${offset}`
  const env = { E2FSPROGS_FAKE_TIME: String(epoch) }
  const dump = await run(['dumpe2fs', dev], { env, ...(signal ? { signal } : {}) })
  const cmds = inodeTimeCommands(dump.stdout, epoch)
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-debugfs-'))
  let r: Awaited<ReturnType<typeof run>>
  try {
    const script = join(dir, 'inode-times')
    await writeFile(script, cmds.join('\n') + '\n')
    r = await run(['debugfs', '-w', '-f', script, dev], { env, ...(signal ? { signal } : {}) })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  // debugfs reports a failed command on stderr and still exits 0.
  const errors = r.stderr.split('\n').filter((l) => l.trim() && !/^debugfs \d/.test(l))
  if (errors.length) throw new Error(`debugfs setting inode times: ${errors.slice(0, 3).join('; ')}`)
  return cmds.length / 2
}
