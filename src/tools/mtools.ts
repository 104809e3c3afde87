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

/** Makes directories in a FAT filesystem. */
export async function mmd(image: string, offset: number, dirs: string[]): Promise<void> {
  await run(mmdArgv(image, offset, dirs), { env })
}

/** Copies a host file into a FAT filesystem. */
export async function mcopy(image: string, offset: number, from: string, to: string): Promise<void> {
  await run(mcopyArgv(image, offset, from, to), { env })
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
