// mtools: files into and out of a FAT filesystem inside an image file, at a byte
// offset (mtools' "image@@offset" syntax), without mounting.

import { run } from './run.js'

/** The mtools image argument for a filesystem at `offsetBytes` of `image`. */
export function mtoolsImage(image: string, offsetBytes = 0): string {
  return offsetBytes ? `${image}@@${offsetBytes}` : image
}

// mtools refuses FAT geometry it finds odd unless told not to check (man mtools: MTOOLS_SKIP_CHECK).
const env = { MTOOLS_SKIP_CHECK: '1', MTOOLS_NO_VFAT: undefined }

/** mmd argv: make directories (parents first, as listed). */
export function mmdArgv(image: string, offset: number, dirs: string[]): string[] {
  return ['mmd', '-i', mtoolsImage(image, offset), ...dirs.map((d) => `::${d}`)]
}

/** mcopy argv: copy one host file to a path in the filesystem. */
export function mcopyArgv(image: string, offset: number, from: string, to: string): string[] {
  return ['mcopy', '-o', '-i', mtoolsImage(image, offset), from, `::${to}`]
}

/** mcopy argv: every file and directory of the filesystem's root, recursively, into a host directory (times kept). */
export function mcopyOutArgv(image: string, offset: number, toDir: string): string[] {
  return ['mcopy', '-s', '-m', '-n', '-i', mtoolsImage(image, offset), '::*', toDir]
}

/** mcopy argv: host files and directories, recursively, into the filesystem's root (times kept). */
export function mcopyInArgv(image: string, offset: number, from: string[]): string[] {
  return ['mcopy', '-s', '-m', '-o', '-i', mtoolsImage(image, offset), ...from, '::/']
}

/** Makes directories in a FAT filesystem. */
export async function mmd(image: string, offset: number, dirs: string[]): Promise<void> {
  await run(mmdArgv(image, offset, dirs), { env })
}

/** Copies a host file into a FAT filesystem. */
export async function mcopy(image: string, offset: number, from: string, to: string): Promise<void> {
  await run(mcopyArgv(image, offset, from, to), { env })
}

/** Copies everything in a FAT filesystem into `toDir`, recursively, or nothing from an empty one. */
export async function mcopyOut(image: string, offset: number, toDir: string, signal?: AbortSignal): Promise<void> {
  if ((await mdirList(image, offset, '/')).length === 0) return
  await run(mcopyOutArgv(image, offset, toDir), { env, ...(signal ? { signal } : {}) })
}

/** Copies host files and directories, recursively, into the root of a FAT filesystem. */
export async function mcopyIn(image: string, offset: number, from: string[], signal?: AbortSignal): Promise<void> {
  if (from.length === 0) return
  await run(mcopyInArgv(image, offset, from), { env, ...(signal ? { signal } : {}) })
}

/** Lists a directory of a FAT filesystem (`mdir -b`: one path per line), [] if it does not exist. */
export async function mdirList(image: string, offset: number, dir: string): Promise<string[]> {
  const r = await run(['mdir', '-b', '-i', mtoolsImage(image, offset), `::${dir}`], { env, okStatus: [0, 1] })
  if (r.status !== 0) return []
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
}
