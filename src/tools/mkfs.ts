// mke2fs and mkfs.fat, writing a filesystem straight into a region of an image file
// (no loop device, no mount). Argv builders are pure; the executors run them.

import { run } from './run.js'

/** Options for an ext4 filesystem made from a directory tree. */
export interface Ext4Options {
  image: string
  offsetBytes: number
  sizeBytes: number
  uuid: string
  label: string
  /** Directory whose contents become the filesystem (mkfs.ext4 -d). */
  fromDir?: string
  /** Exactly these features (-O none,…), as another file system had them (hwimage convert); default mke2fs.conf's. */
  features?: string[]
  /** Inode size in bytes (-I); default mke2fs.conf's. */
  inodeSize?: number
}

/**
 * mkfs.ext4 argv. Inode tables and the journal are written as real zeros
 * (lazy_*_init=0, nodiscard, and UNIX_IO_NOZEROOUT in the environment — see
 * ext4Env): every block the filesystem needs to read as zero is then allocated in
 * the image file, so the file's allocation map (the .bmap) covers it, and an
 * install that writes only mapped blocks is correct on a disk full of garbage.
 */
export function mkfsExt4Argv(o: Ext4Options): string[] {
  const blocks = Math.floor(o.sizeBytes / 4096)
  const argv = [
    'mkfs.ext4',
    '-F',
    '-q',
    '-b',
    '4096',
    '-U',
    o.uuid,
    '-L',
    o.label,
    '-E',
    `offset=${o.offsetBytes},lazy_itable_init=0,lazy_journal_init=0,nodiscard,root_owner=0:0`,
  ]
  if (o.features) argv.push('-O', ['none', ...o.features].join(','))
  if (o.inodeSize) argv.push('-I', String(o.inodeSize))
  if (o.fromDir) argv.push('-d', o.fromDir)
  argv.push(o.image, String(blocks))
  return argv
}

/** Environment for mke2fs: write zeros instead of punching holes in the image file (unix_io.c). */
export const ext4Env = { UNIX_IO_NOZEROOUT: '1' } as const

/** Makes an ext4 filesystem in a region of an image file. */
export async function mkfsExt4(o: Ext4Options, signal?: AbortSignal): Promise<void> {
  await run(mkfsExt4Argv(o), { env: ext4Env, signal })
}

/** Options for a FAT filesystem in a region of an image file. */
export interface FatOptions {
  image: string
  offsetBytes: number
  sizeBytes: number
  label: string
  /** 8 hex digits, e.g. "1A2B3C4D". */
  volumeId: string
  sectorSize?: number
  /** 32 for an ESP; 12/16 for small volumes. */
  fatBits?: 12 | 16 | 32
  /** Sectors per cluster (-s); default: 1 for FAT32, mkfs.vfat's choice otherwise. */
  sectorsPerCluster?: number
}

/** mkfs.vfat argv writing at an offset of an existing image file. */
export function mkfsFatArgv(o: FatOptions): string[] {
  const sectorSize = o.sectorSize ?? 512
  const argv = ['mkfs.vfat', '-S', String(sectorSize), '-n', o.label, '-i', o.volumeId]
  if (o.fatBits) argv.push('-F', String(o.fatBits))
  // One sector per cluster keeps a 100 MiB FAT32 above its 65525-cluster minimum.
  if (o.sectorsPerCluster !== undefined) argv.push('-s', String(o.sectorsPerCluster))
  else if (o.fatBits === 32) argv.push('-s', '1')
  if (o.offsetBytes) argv.push(`--offset=${o.offsetBytes / sectorSize}`)
  argv.push(o.image, String(Math.floor(o.sizeBytes / 1024)))
  return argv
}

/** Makes a FAT filesystem in a region of an image file. */
export async function mkfsFat(o: FatOptions, signal?: AbortSignal): Promise<void> {
  await run(mkfsFatArgv(o), { signal })
}
