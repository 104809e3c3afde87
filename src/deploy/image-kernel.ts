// What an image's kernel drives, from a build output directory: the module set from
// manifest.json (kernel.modules: what the build shipped), and the kernel's own
// indexes — modules.alias, modules.builtin, modules.builtin.modinfo — read out of the
// image's root file system with debugfs at the partition's byte offset (no loop
// device, no mount). The manifest does not carry the aliases: they are a few hundred
// KiB of text per kernel, and the image's own files are what its kernel will load by.

import { readFile } from 'node:fs/promises'
import path from 'node:path'
import type { Manifest } from '../build/manifest.js'
import { HwimageError, InputError } from '../errors.js'
import type { DriverIndexes } from '../kernel/coverage.js'
import type { KernelTree } from '../kernel/kernel-package.js'
import { parseBuiltinModinfo, parseModulesAlias, parseModulesBuiltin } from '../kernel/module-indexes.js'
import { debugfsArgv } from '../seed/detect-network-renderer.js'
import { run } from '../tools/run.js'

/** An image's kernel as the pre-flight check needs it. */
export interface ImageKernel extends DriverIndexes {
  /** Where it was read from (a build directory, or a kernel tree in tests). */
  source: string
  /** The build's kernel.flavor: server, cloud, generic. */
  flavor: string
  version: string
  /** Loadable modules the image ships. */
  modules: ReadonlySet<string>
}

/** Reads the image kernel of a build output directory (manifest.json and NAME.img beside it). */
export async function loadImageKernel(buildDir: string, opts: { signal?: AbortSignal } = {}): Promise<ImageKernel> {
  const manifestPath = path.join(buildDir, 'manifest.json')
  let manifest: Manifest
  try {
    manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT'
    throw new InputError(
      missing ? 'NOT_FOUND' : 'FORMAT_IMAGE',
      `Cannot read image "${buildDir}": ${missing ? 'no manifest.json in it' : `manifest.json is not JSON (${(e as Error).message})`}`,
      {
        hint: 'give a directory `hwimage build -o DIR` wrote',
        cause: e,
      },
    )
  }
  const k = manifest.kernel
  if (!k || typeof k.version !== 'string' || !Array.isArray(k.modules)) {
    throw new InputError(
      'FORMAT_IMAGE',
      `Cannot read image "${buildDir}": manifest.json has no kernel.version and kernel.modules`,
      { hint: 'build the image again with this hwimage' },
    )
  }
  const root =
    manifest.partitions?.find((p) => p.filesystem === 'ext4' && p.label === 'root') ??
    manifest.partitions?.find((p) => p.filesystem === 'ext4')
  if (!root || !manifest.image?.file) {
    throw new InputError(
      'FORMAT_IMAGE',
      `Cannot read image "${buildDir}": manifest.json names no image file with an ext4 root partition`,
    )
  }
  const image = path.join(buildDir, manifest.image.file)
  const offset = BigInt(root.firstLba) * BigInt(manifest.image.sectorSize ?? 512)
  const dir = await modulesDirIn(image, offset, k.version, opts.signal)
  const aliases = await catFile(image, offset, `${dir}/modules.alias`, opts.signal)
  if (aliases === undefined) {
    throw new InputError(
      'FORMAT_IMAGE',
      `Cannot read image "${buildDir}": ${dir}/modules.alias is missing from its root file system`,
      { hint: 'depmod was not run in the image; build it again' },
    )
  }
  const builtin = parseModulesBuiltin((await catFile(image, offset, `${dir}/modules.builtin`, opts.signal)) ?? '')
  const info = parseBuiltinModinfo((await catFile(image, offset, `${dir}/modules.builtin.modinfo`, opts.signal)) ?? '')
  for (const n of info.names) builtin.add(n)
  return {
    source: buildDir,
    flavor: k.flavor,
    version: k.version,
    modules: new Set(k.modules.map((m) => m.replaceAll('-', '_'))),
    aliases: parseModulesAlias(aliases, `${dir}/modules.alias`),
    builtin,
    builtinAliases: info.aliases,
  }
}

/** An ImageKernel from a kernel tree opened with openKernel() (every module of it, unless `modules` is given). */
export function imageKernelFromTree(tree: KernelTree, flavor: string, modules?: ReadonlySet<string>): ImageKernel {
  return {
    source: tree.source,
    flavor,
    version: tree.version,
    modules: modules ?? new Set(tree.modules.keys()),
    aliases: tree.aliases,
    builtin: tree.builtin,
    builtinAliases: tree.builtinAliases,
  }
}

// Debian 12 merged /usr: /lib is a symlink, so look in usr/lib/modules first.
async function modulesDirIn(image: string, offset: bigint, version: string, signal?: AbortSignal): Promise<string> {
  for (const base of ['/usr/lib/modules', '/lib/modules']) {
    const dir = `${base}/${version}`
    const r = await debugfs(image, offset, `stat ${dir}/modules.alias`, signal)
    if (!NOT_FOUND.test(r.stderr) && /Inode:/.test(r.stdout)) return dir
  }
  throw new InputError(
    'FORMAT_IMAGE',
    `Cannot read image "${image}": no /usr/lib/modules/${version} in its root file system`,
    { hint: 'the manifest and the image disagree; build it again' },
  )
}

const NOT_FOUND = /File not found by ext2_lookup|not a regular file/i

async function catFile(image: string, offset: bigint, file: string, signal?: AbortSignal): Promise<string | undefined> {
  const r = await debugfs(image, offset, `cat ${file}`, signal)
  return NOT_FOUND.test(r.stderr) ? undefined : r.stdout
}

// debugfs exits 0 when the image cannot be opened (it says so on stderr), 1 on a bad superblock.
async function debugfs(
  image: string,
  offset: bigint,
  request: string,
  signal?: AbortSignal,
): Promise<{ stdout: string; stderr: string }> {
  let r: Awaited<ReturnType<typeof run>>
  try {
    r = await run(debugfsArgv(image, offset, request), { okStatus: [0, 1], ...(signal ? { signal } : {}) })
  } catch (e) {
    if (e instanceof HwimageError && (e.code === 'INTERRUPTED' || e.code === 'TOOL_MISSING')) throw e
    throw unreadable(image, offset, e)
  }
  if (r.status !== 0 || /while trying to open|Filesystem not open/.test(r.stderr))
    throw unreadable(image, offset, r.stderr.trim().split('\n').slice(-3).join('; '))
  return r
}

function unreadable(image: string, offset: bigint, cause: unknown): InputError {
  return new InputError(
    'FORMAT_IMAGE',
    `Cannot read image "${image}": no ext4 root file system readable at byte ${offset}`,
    {
      hint: 'give the directory the build wrote, with its raw NAME.img (not only the .zst)',
      cause,
    },
  )
}
