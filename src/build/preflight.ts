// What a build checks before its first long step (mmdebstrap takes minutes), so that a
// mistake the user can fix ends the build at once with exit 2, naming the path or the
// spec field: the output directory can be made and written, every files[].source is a
// readable file, the package cache is a directory, the output file system can hold a
// file of the image's size, and there is free space for what the build writes. The
// size and space checks run again once the root tree is built and its size is known,
// before mkfs.ext4.

import { constants } from 'node:fs'
import { access, mkdir, open, rm, stat, statfs } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { InputError, UsageError } from '../errors.js'
import { FIXED_BYTES, MiB, alignUp, fitRootFsBytes } from './layout.js'
import { formatSize, type BuildSpec } from './spec.js'

/**
 * A floor for the root tree of any image hwimage builds: the default image's tree
 * after the server cut is about 460 MiB (docs/build.md: 564 MiB mapped, of which the
 * journal, the inode tables and the ESP are about 100 MiB). Before the cut the tree
 * holds Debian's whole module tree as well, so the real need is larger.
 */
export const MIN_TREE_BYTES = 448 * MiB

/** Bytes the ESP takes in the image: mkfs.vfat's two FATs (1.6 MiB for 100 MiB at one sector a cluster) and the loaders. */
export const ESP_WRITTEN_BYTES = 8 * MiB

/** Makes the output directory, or says why it cannot be used (USAGE: it comes from -o). */
export async function prepareOutputDir(dir: string): Promise<void> {
  const st = await stat(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined
    throw outputError(dir, e)
  })
  if (st && !st.isDirectory()) {
    throw new UsageError(`Cannot build into "${dir}": it is a file, not a directory`, {
      hint: 'name a directory with -o DIR (it is made if missing); the outputs are several files',
    })
  }
  await mkdir(dir, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
    throw outputError(dir, e)
  })
  await access(dir, constants.W_OK).catch((e: NodeJS.ErrnoException) => {
    throw outputError(dir, e)
  })
}

function outputError(dir: string, e: NodeJS.ErrnoException): UsageError {
  const why =
    e.code === 'ENOTDIR' || e.code === 'EEXIST'
      ? 'a part of the path is a file'
      : e.code === 'EACCES' || e.code === 'EPERM'
        ? 'permission denied'
        : e.code === 'EROFS'
          ? 'the file system is read-only'
          : e.message
  return new UsageError(`Cannot build into "${dir}": ${why}`, {
    hint: 'name a directory you can write with -o DIR',
    cause: e,
  })
}

/** Checks that every files[].source is a readable regular file (relative to `specDir`). */
export async function checkSpecFiles(spec: Pick<BuildSpec, 'files'>, specDir: string, source = 'spec'): Promise<void> {
  for (const [i, f] of spec.files.entries()) {
    if (f.source === undefined) continue
    const field = `files[${i}].source`
    const path = resolve(specDir, f.source)
    let st: Awaited<ReturnType<typeof stat>>
    try {
      st = await stat(path)
      await access(path, constants.R_OK)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        throw new InputError(
          'NOT_FOUND',
          `Invalid ${source}: field "${field}": "${f.source}" does not exist (${path})`,
          {
            hint: 'a relative source is read from the directory the spec is in',
            cause: e,
          },
        )
      }
      throw new InputError(
        'SPEC_INVALID',
        `Invalid ${source}: field "${field}": cannot read "${path}": ${(e as Error).message}`,
        { cause: e },
      )
    }
    if (!st.isFile()) {
      throw new InputError('SPEC_INVALID', `Invalid ${source}: field "${field}": "${path}" is not a regular file`, {
        hint: 'each files[] entry copies one file; list the files of a directory one by one',
      })
    }
  }
}

/** Makes the spec's package cache directory, or says why the field is wrong. */
export async function checkCacheDir(spec: Pick<BuildSpec, 'cache'>, source = 'spec'): Promise<void> {
  if (!spec.cache) return
  const hint = 'name a directory you can write for the package cache (made if missing), or null for none'
  const st = await stat(spec.cache).catch(() => undefined)
  if (st && !st.isDirectory())
    throw new InputError('SPEC_INVALID', `Invalid ${source}: field "cache": "${spec.cache}" is not a directory`, {
      hint,
    })
  try {
    await mkdir(spec.cache, { recursive: true })
    await access(spec.cache, constants.W_OK)
  } catch (e) {
    const why =
      (e as NodeJS.ErrnoException).code === 'EROFS'
        ? 'its file system is read-only'
        : (e as NodeJS.ErrnoException).code === 'ENOTDIR' || (e as NodeJS.ErrnoException).code === 'EEXIST'
          ? 'a part of the path is a file'
          : (e as Error).message
    throw new InputError('SPEC_INVALID', `Invalid ${source}: field "cache": cannot use "${spec.cache}": ${why}`, {
      hint,
      cause: e,
    })
  }
}

/** mmdebstrap --mode=root needs root: say so before anything starts (`uid` is for tests). */
export function checkRoot(uid: number | undefined = process.getuid?.()): void {
  if (uid === undefined || uid === 0) return
  throw new UsageError(
    'Cannot build: hwimage build needs root (mmdebstrap --mode=root makes the tree as root, with /proc, /sys and /dev mounted)',
    {
      hint: 'run it with sudo',
    },
  )
}

/** ext4's default journal size for a filesystem of `blocks` 4 KiB blocks (e2fsprogs 1.47 lib/ext2fs/mkjournal.c, ext2fs_default_journal_size), in blocks. */
export function defaultJournalBlocks(blocks: number): number {
  if (blocks < 2048) return 0
  if (blocks < 32768) return 1024
  if (blocks < 256 * 1024) return 4096
  if (blocks < 512 * 1024) return 8192
  if (blocks < 4096 * 1024) return 16384
  if (blocks < 8192 * 1024) return 32768
  if (blocks < 16384 * 1024) return 65536
  if (blocks < 32768 * 1024) return 131072
  return 262144
}

/**
 * Bytes mkfs.ext4 writes into the image for an empty filesystem of `fsBytes`: the
 * inode tables and the journal, which src/tools/mkfs.ts has written as real zeros.
 * Debian's /etc/mke2fs.conf: 256-byte inodes, one per 16 KiB ("small", below 512 MiB:
 * one per 4 KiB). Bitmaps, group descriptors and superblock copies are left out (a
 * lower bound).
 */
export function ext4WrittenBytes(fsBytes: number): number {
  const inodeRatio = fsBytes < 512 * MiB ? 4096 : 16384
  const inodeTables = Math.floor(fsBytes / inodeRatio) * 256
  return inodeTables + defaultJournalBlocks(Math.floor(fsBytes / 4096)) * 4096
}

/**
 * What a build writes into its output directory, at least: the image's mapped bytes
 * (the content, the ext4 metadata, the ESP) and the .zst, which holds the zeros as
 * nearly nothing and Debian's files in about a third (the default image: 184 MiB
 * of .zst for 564 MiB mapped).
 */
export function outputBytesEstimate(rootFsBytes: number, contentBytes: number): number {
  return contentBytes + ext4WrittenBytes(rootFsBytes) + ESP_WRITTEN_BYTES + Math.round(contentBytes / 3)
}

/**
 * Refuses a size or root_size no root tree fits in, which would otherwise fail after
 * mmdebstrap: the smallest tree (MIN_TREE_BYTES) with ext4's journal and headroom
 * (fitRootFsBytes) needs 704 MiB of root filesystem, 810 MiB of image.
 */
export function checkRootFloor(spec: Pick<BuildSpec, 'size' | 'root_size'>, source = 'spec'): void {
  const floor = fitRootFsBytes(MIN_TREE_BYTES, 0)
  const why = `the smallest root tree hwimage builds needs ${formatSize(floor)} of root filesystem`
  if (typeof spec.root_size === 'number' && alignUp(spec.root_size) < floor) {
    throw new InputError(
      'SPEC_INVALID',
      `Invalid ${source}: field "root_size": ${formatSize(spec.root_size)} is too small: ${why}`,
      {
        hint: `use at least ${floor / MiB}M, or "fit"`,
      },
    )
  }
  if (spec.size !== 'fit' && alignUp(spec.size) - FIXED_BYTES < floor) {
    throw new InputError(
      'SPEC_INVALID',
      `Invalid ${source}: field "size": ${formatSize(spec.size)} leaves ${formatSize(alignUp(spec.size) - FIXED_BYTES)} for root, too small: ${why}`,
      {
        hint: `use at least ${(floor + FIXED_BYTES) / MiB}M, or "fit"`,
      },
    )
  }
}

/** The root filesystem size a spec asks for, before its content is known (a floor for "fit"). */
export function plannedRootFsBytes(spec: Pick<BuildSpec, 'size' | 'root_size'>): number {
  if (typeof spec.root_size === 'number') return alignUp(spec.root_size)
  if (spec.root_size === 'fill' && spec.size !== 'fit') return alignUp(spec.size) - FIXED_BYTES
  return fitRootFsBytes(MIN_TREE_BYTES, 0)
}

/** One directory and what the build writes there. */
export interface SpaceNeed {
  dir: string
  bytes: number
  what: string
}

/** Free bytes of the file system holding `dir` for an unprivileged writer (statfs f_bavail). */
export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir)
  return s.bavail * s.bsize
}

/** Checks each file system has room for what is written to it (needs on one file system add up). */
export async function checkFreeSpace(
  needs: readonly SpaceNeed[],
  opts: { free?: (dir: string) => Promise<number> } = {},
): Promise<void> {
  const byDevice = new Map<number, SpaceNeed[]>()
  for (const n of needs) {
    const dev = (await stat(await existingAncestor(n.dir))).dev
    byDevice.set(dev, [...(byDevice.get(dev) ?? []), n])
  }
  for (const group of byDevice.values()) {
    const free = await (opts.free ?? freeBytes)(await existingAncestor(group[0]!.dir))
    const total = group.reduce((sum, n) => sum + n.bytes, 0)
    if (total <= free) continue
    const dirs = group.map((n) => `"${n.dir}"`).join(' and ')
    const whats = group.map((n) => `${n.what}: ${formatSize(n.bytes)}`).join('; ')
    throw new InputError(
      'TARGET_TOO_SMALL',
      `Cannot build: the file system of ${dirs} has ${formatSize(free)} free, the build writes at least ${formatSize(total)} there (${whats})`,
      {
        hint: 'free space there, choose another output directory with -o DIR, or make the image smaller (size, root_size); ext4 writes its inode tables in full: 1/64 of root',
      },
    )
  }
}

// A directory made later (a work directory) is on its nearest existing ancestor's file system.
async function existingAncestor(dir: string): Promise<string> {
  let d = resolve(dir)
  while (
    !(await stat(d).then(
      (st) => st.isDirectory(),
      () => false,
    )) &&
    dirname(d) !== d
  )
    d = dirname(d)
  return d
}

/** Checks that the file system of `dir` holds a file of `bytes` (FAT32 stops at 4 GiB, ext4 at 16 TiB) by making a sparse one. */
export async function checkFileSizeLimit(dir: string, bytes: number, source = 'spec'): Promise<void> {
  const probe = join(dir, `.hwimage-size-probe-${process.pid}`)
  const fh = await open(probe, 'w')
  try {
    await fh.truncate(bytes)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'EFBIG' || code === 'EINVAL') {
      throw new InputError(
        'SPEC_INVALID',
        `Invalid ${source}: field "size": the file system of "${dir}" cannot hold a file of ${formatSize(bytes)}`,
        {
          hint: 'write the image to another file system with -o DIR, or make it smaller (FAT32 holds files below 4 GiB)',
          cause: e,
        },
      )
    }
    throw e
  } finally {
    await fh.close()
    await rm(probe, { force: true })
  }
}
