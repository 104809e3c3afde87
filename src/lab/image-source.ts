// Which disk image a lab boot uses: an image file (raw or qcow2), or a build output
// directory whose manifest.json names it.

import { open, readFile, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { InputError } from '../errors.js'

/** An image the lab can boot. */
export interface LabImage {
  /** Absolute path (qcow2 overlays record it as their backing file). */
  path: string
  format: 'raw' | 'qcow2'
  /** From manifest.json when booting a build directory. */
  name?: string
  kernelFlavor?: string
  kernelVersion?: string
}

const QCOW2_MAGIC = [0x51, 0x46, 0x49, 0xfb] // "QFI\xfb"

/** Resolves IMAGE|DIR to the image file to boot. */
export async function resolveLabImage(arg: string): Promise<LabImage> {
  const path = resolve(arg)
  const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new InputError(
      'NOT_FOUND',
      `Cannot read image "${arg}": ${e.code === 'ENOENT' ? 'no such file or directory' : e.message}`,
    )
  })
  if (st.isDirectory()) return fromBuildDir(path)
  return { path, format: await formatOf(path) }
}

async function fromBuildDir(dir: string): Promise<LabImage> {
  const manifestPath = join(dir, 'manifest.json')
  let manifest: unknown
  try {
    manifest = JSON.parse(await readFile(manifestPath, 'utf8'))
  } catch (e) {
    const why =
      (e as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'it has no manifest.json'
        : `manifest.json does not parse: ${(e as Error).message}`
    throw new InputError('FORMAT_IMAGE', `Cannot use build directory "${dir}": ${why}`, {
      hint: 'give an image file, or a directory made by `hwimage build`',
    })
  }
  const m = manifest as {
    name?: unknown
    image?: { file?: unknown }
    files?: unknown
    kernel?: { flavor?: unknown; version?: unknown }
  }
  // manifest.image.file names the raw image; older manifests only list files.
  const names: string[] = []
  if (typeof m.image?.file === 'string') names.push(m.image.file)
  if (Array.isArray(m.files)) {
    for (const f of m.files) {
      const name = typeof f === 'string' ? f : (f as { name?: unknown })?.name
      if (typeof name === 'string') names.push(name)
    }
  }
  const file = names.find((n) => n.endsWith('.img')) ?? names.find((n) => n.endsWith('.qcow2'))
  if (!file)
    throw new InputError(
      'FORMAT_IMAGE',
      `Cannot use build directory "${dir}": manifest.json names no .img or .qcow2 file`,
    )
  const path = join(dir, file)
  const image: LabImage = { path, format: await formatOf(path) }
  if (typeof m.name === 'string') image.name = m.name
  if (typeof m.kernel?.flavor === 'string') image.kernelFlavor = m.kernel.flavor
  if (typeof m.kernel?.version === 'string') image.kernelVersion = m.kernel.version
  return image
}

/** raw or qcow2, by the file's magic bytes (compressed images must be unpacked first). */
async function formatOf(path: string): Promise<'raw' | 'qcow2'> {
  const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new InputError(
      'NOT_FOUND',
      `Cannot read image "${path}": ${e.code === 'ENOENT' ? 'no such file' : e.message}`,
    )
  })
  try {
    const head = new Uint8Array(4)
    await fh.read(head, 0, 4, 0)
    if (QCOW2_MAGIC.every((b, i) => head[i] === b)) return 'qcow2'
    if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) {
      throw new InputError('FORMAT_IMAGE', `Cannot boot "${path}": it is zstd-compressed`, {
        hint: 'boot the .img beside it, or decompress it with `zstd -d`',
      })
    }
    return 'raw'
  } finally {
    await fh.close()
  }
}
