// A kernel as the tools see it: a Debian linux-image .deb, or an unpacked tree
// (an image root, or its lib/modules/<version> directory), read into one
// KernelTree: version, vmlinuz, every module with its size and dependencies,
// and the aliases that say which devices each module drives.
//
// A .deb carries no modules.dep or modules.alias (its postinst runs depmod), so
// it is unpacked once into the cache (HWIMAGE_CACHE_DIR, default /var/cache/hwimage)
// and depmod is run there. An unpacked tree without modules.dep gets depmod run
// on a shadow copy made of symlinks, so the user's tree is never written to.

import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { HwimageError, InputError, withContext } from '../errors.js'
import { run } from '../tools/run.js'
import { depmodArgv, dpkgDebExtractArgv } from './kernel-tool-argv.js'
import { fetchKernelPackage } from './kernel-fetch.js'
import {
  moduleNameOf,
  parseBuiltinModinfo,
  parseModulesAlias,
  parseModulesBuiltin,
  parseModulesDep,
  parseModulesSoftdep,
  type ModuleAlias,
  type SoftDeps,
} from './module-indexes.js'

/** One loadable module of a kernel tree. */
export interface KernelModule {
  name: string
  /** Path relative to the modules directory, as modules.dep writes it (kernel/…/x.ko). */
  path: string
  /** Size of the module file as it is in the tree. */
  bytes: number
  /** Names of the modules it needs (modules.dep: already transitive, in load order). */
  deps: string[]
}

/** A kernel: version, image, modules and their indexes. */
export interface KernelTree {
  /** What was opened: a .deb path or a directory. */
  source: string
  version: string
  /** The directory holding lib/modules/<version> (and boot/), or null when only a modules directory was given. */
  root: string | null
  vmlinuzPath: string | null
  vmlinuzBytes: number
  /** …/lib/modules/<version> */
  modulesDir: string
  modules: Map<string, KernelModule>
  /** modules.alias: which module each modalias glob loads. */
  aliases: ModuleAlias[]
  /** Drivers built into vmlinuz (modules.builtin) and their aliases (modules.builtin.modinfo). */
  builtin: Set<string>
  builtinAliases: ModuleAlias[]
  softdeps: Map<string, SoftDeps>
  /** Sum of every regular file under modulesDir: modules plus index files (du --apparent-size style). */
  treeBytes: number
}

/** Where kernel packages are downloaded and unpacked. */
export function defaultCacheDir(): string {
  return process.env.HWIMAGE_CACHE_DIR || '/var/cache/hwimage'
}

/** Options for openKernel(). */
export interface OpenKernelOptions {
  cacheDir?: string
  signal?: AbortSignal
}

/**
 * Opens a kernel: a linux-image .deb, `apt:PACKAGE` (downloaded with apt-get into
 * the cache), an image root, or a lib/modules/<version> directory.
 */
export async function openKernel(source: string, opts: OpenKernelOptions = {}): Promise<KernelTree> {
  const cacheDir = await usableCacheDir(opts.cacheDir ?? defaultCacheDir())
  if (source.startsWith('apt:')) {
    const deb = await fetchKernelPackage(source.slice(4), { cacheDir, signal: opts.signal })
    return await openDeb(deb, cacheDir, opts.signal)
  }
  let st: Awaited<ReturnType<typeof fs.stat>>
  try {
    st = await fs.stat(source)
  } catch (e) {
    throw new InputError(
      'NOT_FOUND',
      `Cannot read kernel "${source}": ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`,
      {
        hint: 'give a linux-image .deb, an unpacked tree, or apt:linux-image-amd64',
        cause: e,
      },
    )
  }
  if (st.isDirectory()) return await openTree(source, source, opts.signal)
  return await openDeb(source, cacheDir, opts.signal)
}

async function openDeb(deb: string, cacheDir: string, signal?: AbortSignal): Promise<KernelTree> {
  const head = new Uint8Array(8)
  const fh = await fs.open(deb, 'r')
  try {
    await fh.read(head, 0, 8, 0)
  } finally {
    await fh.close()
  }
  if (Buffer.from(head).toString('latin1') !== '!<arch>\n') {
    throw new InputError(
      'FORMAT_KERNEL',
      `Cannot read kernel package "${deb}": not a Debian package (no ar archive header)`,
    )
  }
  const digest = await sha256File(deb)
  const base = path.basename(deb).replace(/\.deb$/, '')
  const target = path.join(cacheDir, 'kernels', `${base}-${digest.slice(0, 12)}`)
  const stamp = path.join(target, '.hwimage-unpacked')
  if (!(await exists(stamp))) {
    const tmp = `${target}.tmp-${process.pid}`
    await fs.rm(tmp, { recursive: true, force: true })
    await fs.mkdir(tmp, { recursive: true })
    try {
      try {
        await run(dpkgDebExtractArgv(deb, tmp), { signal })
      } catch (e) {
        if (e instanceof HwimageError && e.code === 'TOOL_FAILED') {
          throw new InputError('FORMAT_KERNEL', `Cannot read kernel package "${deb}": dpkg-deb cannot unpack it`, {
            cause: e,
          })
        }
        throw e
      }
      const { version, modulesDir } = await findModulesDir(tmp, deb)
      // Debian's packages carry no indexes (postinst runs depmod); make them once here.
      if (!(await exists(path.join(modulesDir, 'modules.dep'))))
        await run(depmodArgv({ baseDir: tmp, version }), { signal })
      await fs.writeFile(path.join(tmp, '.hwimage-unpacked'), `${deb}\n${digest}\n`)
      // The target only ever appears whole, by this rename, so an existing one is complete.
      await fs.rename(tmp, target).catch(async (e: NodeJS.ErrnoException) => {
        // Another hwimage unpacked the same package meanwhile: use its copy.
        if ((e.code === 'ENOTEMPTY' || e.code === 'EEXIST') && (await exists(stamp)))
          await fs.rm(tmp, { recursive: true, force: true })
        else throw e
      })
    } catch (e) {
      await fs.rm(tmp, { recursive: true, force: true })
      throw e
    }
  }
  return await openTree(target, deb, signal)
}

async function openTree(dir: string, source: string, signal?: AbortSignal): Promise<KernelTree> {
  const { root, modulesDir, version } = await findModulesDir(dir, source)
  let indexDir = modulesDir
  let shadow: string | undefined
  if (!(await exists(path.join(modulesDir, 'modules.dep')))) {
    shadow = await shadowDepmod(modulesDir, version, signal)
    indexDir = path.join(shadow, 'lib', 'modules', version)
  }
  try {
    return await readTree(source, root, modulesDir, indexDir, version)
  } catch (e) {
    throw withContext(`Cannot read kernel "${source}"`, e)
  } finally {
    if (shadow) await fs.rm(shadow, { recursive: true, force: true })
  }
}

async function readTree(
  source: string,
  root: string | null,
  modulesDir: string,
  indexDir: string,
  version: string,
): Promise<KernelTree> {
  const read = (name: string) => fs.readFile(path.join(indexDir, name), 'utf8').catch(() => '')
  const deps = parseModulesDep(await read('modules.dep'))
  const aliases = parseModulesAlias(await read('modules.alias'))
  const softdeps = parseModulesSoftdep(await read('modules.softdep'))
  const builtinInfo = parseBuiltinModinfo(await read('modules.builtin.modinfo'))
  const builtin = parseModulesBuiltin(await read('modules.builtin'))
  for (const n of builtinInfo.names) builtin.add(n)

  const modules = new Map<string, KernelModule>()
  const paths = [...deps.keys()]
  const sizes = await mapLimit(paths, 64, async (p) => {
    try {
      return (await fs.stat(path.join(modulesDir, p))).size
    } catch {
      throw new InputError('FORMAT_KERNEL', `modules.dep lists "${p}" but the file is missing`, {
        hint: 'run depmod on the tree again',
      })
    }
  })
  paths.forEach((p, i) => {
    const name = moduleNameOf(p)
    modules.set(name, { name, path: p, bytes: sizes[i]!, deps: deps.get(p)!.map(moduleNameOf) })
  })

  let vmlinuzPath: string | null = null
  let vmlinuzBytes = 0
  if (root) {
    const candidate = path.join(root, 'boot', `vmlinuz-${version}`)
    const st = await fs.stat(candidate).catch(() => undefined)
    if (st?.isFile()) {
      vmlinuzPath = candidate
      vmlinuzBytes = st.size
    }
  }
  return {
    source,
    version,
    root,
    vmlinuzPath,
    vmlinuzBytes,
    modulesDir,
    modules,
    aliases,
    builtin,
    builtinAliases: builtinInfo.aliases,
    softdeps,
    treeBytes: await regularFileBytes(modulesDir),
  }
}

/** Finds lib/modules/<version> in an image root, or accepts the modules directory itself. */
async function findModulesDir(
  dir: string,
  source: string,
): Promise<{ root: string | null; modulesDir: string; version: string }> {
  const looksLikeModulesDir =
    (await exists(path.join(dir, 'modules.order'))) || (await exists(path.join(dir, 'kernel')))
  if (looksLikeModulesDir) {
    const abs = path.resolve(dir)
    const parent = path.dirname(abs)
    const libModules = path.basename(parent) === 'modules' && path.basename(path.dirname(parent)) === 'lib'
    let root: string | null = libModules ? path.dirname(path.dirname(parent)) : null
    if (root && path.basename(root) === 'usr') root = path.dirname(root)
    return { root, modulesDir: abs, version: path.basename(abs) }
  }
  for (const rel of ['lib/modules', 'usr/lib/modules']) {
    const base = path.join(dir, rel)
    const versions = await fs.readdir(base).catch(() => [] as string[])
    if (versions.length === 1)
      return { root: path.resolve(dir), modulesDir: path.resolve(base, versions[0]!), version: versions[0]! }
    if (versions.length > 1) {
      throw new InputError(
        'FORMAT_KERNEL',
        `Cannot read kernel "${source}": it holds ${versions.length} kernels (${versions.join(', ')})`,
        {
          hint: `name one directory: ${path.join(base, versions[0]!)}`,
        },
      )
    }
  }
  throw new InputError('FORMAT_KERNEL', `Cannot read kernel "${source}": no lib/modules/<version> in it`, {
    hint: 'give a linux-image .deb, an image root, or a lib/modules/<version> directory',
  })
}

// depmod writes its indexes into the tree it reads; give it a tree of symlinks.
async function shadowDepmod(modulesDir: string, version: string, signal?: AbortSignal): Promise<string> {
  const shadow = await fs.mkdtemp(path.join(os.tmpdir(), 'hwimage-depmod-'))
  const target = path.join(shadow, 'lib', 'modules', version)
  await fs.mkdir(target, { recursive: true })
  for (const entry of await fs.readdir(modulesDir)) {
    await fs.symlink(path.join(modulesDir, entry), path.join(target, entry))
  }
  try {
    await run(depmodArgv({ baseDir: shadow, version }), { signal })
  } catch (e) {
    await fs.rm(shadow, { recursive: true, force: true })
    throw e
  }
  return shadow
}

async function usableCacheDir(dir: string): Promise<string> {
  try {
    await fs.mkdir(dir, { recursive: true })
    await fs.access(dir, fs.constants.W_OK)
    return dir
  } catch {
    const fallback = path.join(os.tmpdir(), 'hwimage-cache')
    await fs.mkdir(fallback, { recursive: true })
    return fallback
  }
}

/** Sum of the sizes of the regular files under a directory (symlinks not followed). */
export async function regularFileBytes(dir: string): Promise<number> {
  let total = 0
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) total += await regularFileBytes(p)
    else if (e.isFile()) total += (await fs.stat(p)).size
  }
  return total
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer)
  return h.digest('hex')
}

async function exists(p: string): Promise<boolean> {
  return await fs.access(p).then(
    () => true,
    () => false,
  )
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}
