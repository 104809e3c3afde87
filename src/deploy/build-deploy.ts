// `hwimage build-deploy -o DIR`: the deploy environment, a network-booted kernel and
// one initramfs that runs hwimage. DIR gets vmlinuz, initrd and manifest.json.
//
// Order of work:
//   1. kernel: Debian's signed linux-image-amd64 (fetched with apt, as the image builder
//      does), cut to the server flavor's module set (selectServerModules) and written
//      with depmod's indexes (writeModuleTree). Modules stay uncompressed .ko, signed as
//      Debian ships them: inside the compressed initramfs that is 6 MB smaller than
//      per-module xz (measured: 23.8 vs 29.7 MB), and finit_module(2) loads them as they are.
//   2. busybox from Debian's busybox-static package (the shell, modprobe, udhcpc, ip).
//   3. the programs the installer runs, copied from this host with their libraries.
//   4. hwimage as one executable (sea.ts) and the libraries it and its addon need.
//   5. /init and udhcpc's script (init-script.ts).
//   6. one cpio newc archive, compressed (zstd by default: see docs/deploy.md for the
//      measurements), and every part measured into manifest.json.

import fs from 'node:fs/promises'
import path from 'node:path'
import { HwimageError, InputError, withContext } from '../errors.js'
import { fetchKernelPackage } from '../kernel/kernel-fetch.js'
import { openKernel, regularFileBytes } from '../kernel/kernel-package.js'
import { writeModuleTree } from '../kernel/module-tree-writer.js'
import { selectServerModules } from '../kernel/server-modules.js'
import { SERVER_POLICY } from '../kernel/server-policy.js'
import { run } from '../tools/run.js'
import { HostFileCopier, MERGED_USR_LINKS, mergedPath } from './host-files.js'
import { initScript, udhcpcScript, UDHCPC_SCRIPT_PATH } from './init-script.js'
import { compressInitramfs, timeDecompression, writeNewcArchive, type InitramfsCompression } from './initramfs.js'
import { makeSea, PACKAGE_ROOT } from './sea.js'

/** The goal for kernel + initramfs (issue 13). */
export const DEPLOY_SIZE_GOAL = 64 * 1024 * 1024

/** The kernel package the deploy environment boots (the image builder's server flavor). */
export const DEPLOY_KERNEL_PACKAGE = 'linux-image-amd64'

/** The programs the installer runs (src/tools/programs.ts), copied from this host. */
export const DEPLOY_PROGRAMS = [
  'blkdiscard',
  'fallocate',
  'wipefs',
  'setpriv',
  'xargs',
  'blockdev',
  'xz',
  'gzip',
  'zstd',
  'sgdisk',
  'mkfs.vfat',
  'mcopy',
  'mmd',
  'mdir',
  'debugfs',
  'efibootmgr',
] as const

/**
 * glibc's iconv modules mtools needs: it converts file names through code page 850 (its
 * default) and, without the module, cannot open any FAT ("Error converting to codepage 850",
 * then "Cannot initialize '::'"), so the seed partition could not be written.
 */
export const DEPLOY_GCONV_FILES = [
  '/usr/lib/x86_64-linux-gnu/gconv/gconv-modules',
  '/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.d/gconv-modules-extra.conf',
  '/usr/lib/x86_64-linux-gnu/gconv/IBM850.so',
] as const

/** The kernel command line the environment expects; the server fills the placeholders. */
export const DEPLOY_CMDLINE =
  'console=tty0 console=ttyS0,115200n8 hwimage.url=<URL> hwimage.token=<TOKEN> hwimage.mac=<MAC>'

/** Options for buildDeploy(). */
export interface BuildDeployOptions {
  outDir: string
  compression?: InitramfsCompression
  level?: number
  /** Where kernel and busybox packages are fetched (default: the kernel cache). */
  cacheDir?: string
  /** Compress each part on its own too, for the manifest's per-part sizes (default true). */
  measureParts?: boolean
  signal?: AbortSignal
  onStep?: (step: string) => void
}

/** One part of the initramfs, measured. */
export interface PartSize {
  bytes: number
  /** The part alone, compressed as the initramfs is; null when not measured. */
  compressedBytes: number | null
}

/** DIR/manifest.json. */
export interface DeployManifest {
  version: 1
  builtAt: string
  kernel: { package: string; version: string; file: 'vmlinuz'; bytes: number; rdZstd: boolean; rdXz: boolean }
  initramfs: {
    file: 'initrd'
    format: 'cpio newc'
    compression: InitramfsCompression
    level: number
    bytes: number
    uncompressedBytes: number
    entries: number
    compressSeconds: number
    /** Seconds Debian's decompressor takes on the build machine (zstd -t / xz -t). */
    decompressSeconds: number
  }
  total: { bytes: number; goalBytes: number; withinGoal: boolean }
  parts: {
    modules: PartSize & { count: number; compression: 'none'; signed: true }
    hwimage: PartSize & { nodeVersion: string; bundleBytes: number; addonBytes: number }
    programs: PartSize & { programs: string[]; libraries: string[] }
    busybox: PartSize & { package: string }
    scripts: PartSize
  }
  cmdline: string
}

/** Builds the deploy environment into opts.outDir. */
export async function buildDeploy(opts: BuildDeployOptions): Promise<DeployManifest> {
  const step = opts.onStep ?? (() => {})
  const compression = opts.compression ?? 'zstd'
  const level = opts.level ?? (compression === 'zstd' ? 19 : 6)
  const signal = opts.signal
  const outDir = path.resolve(opts.outDir)
  await fs.mkdir(outDir, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
    throw new InputError(
      'NOT_FOUND',
      `Cannot build the deploy environment: ${outDir} cannot be made (${e.code ?? e.message})`,
      { cause: e },
    )
  })
  const work = await fs.mkdtemp(path.join(outDir, '.work-'))
  const stage = path.join(work, 'root')
  const partDirs = {
    modules: ['usr/lib/modules'],
    hwimage: ['usr/bin/hwimage'],
    busybox: ['usr/bin/busybox'],
    scripts: ['init', UDHCPC_SCRIPT_PATH.slice(1)],
  }
  try {
    await makeSkeleton(stage)

    step('kernel (linux-image-amd64, server module set, depmod)')
    const cacheOpts = { ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}), ...(signal ? { signal } : {}) }
    const tree = await openKernel(`apt:${DEPLOY_KERNEL_PACKAGE}`, cacheOpts)
    const selection = await selectServerModules(tree, SERVER_POLICY, {}, { ...(signal ? { signal } : {}) })
    const written = await writeModuleTree(tree, new Set(selection.modules), path.join(work, 'kernel'), {
      compression: 'none',
      ...(signal ? { signal } : {}),
    })
    if (written.unresolved.length > 0)
      throw new HwimageError(
        'KERNEL_UNRESOLVED',
        `Cannot build the deploy environment: ${written.unresolved.length} unresolved symbols in the module set`,
      )
    await fs.rename(path.join(written.root, 'lib/modules'), path.join(stage, 'usr/lib/modules'))
    const config = await fs.readFile(path.join(tree.root!, 'boot', `config-${tree.version}`), 'utf8').catch(() => '')
    const rdZstd = /^CONFIG_RD_ZSTD=y$/m.test(config)
    const rdXz = /^CONFIG_RD_XZ=y$/m.test(config)
    if (!(compression === 'zstd' ? rdZstd : rdXz)) {
      throw new InputError(
        'USAGE',
        `Cannot build the deploy environment: kernel ${tree.version} cannot unpack a ${compression} initramfs (CONFIG_RD_${compression.toUpperCase()} is not set)`,
        { hint: `use --compression ${rdZstd ? 'zstd' : 'xz'}` },
      )
    }
    await fs.copyFile(tree.vmlinuzPath!, path.join(outDir, 'vmlinuz'))

    step('busybox (busybox-static)')
    const busyboxDeb = await fetchKernelPackage('busybox-static', {
      cacheDir: path.join(opts.cacheDir ?? '/var/cache/hwimage'),
      ...(signal ? { signal } : {}),
    })
    await run(['dpkg-deb', '-x', busyboxDeb, path.join(work, 'busybox')], { signal })
    await fs.copyFile(path.join(work, 'busybox/bin/busybox'), path.join(stage, 'usr/bin/busybox'))
    await fs.chmod(path.join(stage, 'usr/bin/busybox'), 0o755)

    step('programs the installer runs, with their libraries')
    const copier = new HostFileCopier(stage)
    const programs: string[] = []
    for (const p of DEPLOY_PROGRAMS) {
      const host = await HostFileCopier.which(p)
      await copier.addWithLibraries(host, { ...(signal ? { signal } : {}) })
      programs.push(host)
    }
    for (const f of DEPLOY_GCONV_FILES) await copier.add(f)

    step('hwimage as one executable (esbuild, node --experimental-sea-config, postject)')
    const seaFile = path.join(stage, 'usr/bin/hwimage')
    const sea = await makeSea(seaFile, work, { ...(signal ? { signal } : {}) })
    // node's libraries, and libzstd for the addon (which travels inside the executable).
    await copier.addLibrariesOf(seaFile, { ...(signal ? { signal } : {}) })
    await copier.addLibrariesOf(path.join(PACKAGE_ROOT, 'build/Release/zstd_frames.node'), {
      ...(signal ? { signal } : {}),
    })
    const libraries = [...copier.bytes.keys()].filter((k) => k.includes('/lib')).sort()

    // Busybox applets for everything the host's programs do not already provide.
    await linkApplets(stage)

    step('/init and the DHCP script')
    await fs.writeFile(path.join(stage, 'init'), initScript(), { mode: 0o755 })
    await fs.mkdir(path.dirname(path.join(stage, UDHCPC_SCRIPT_PATH)), { recursive: true })
    await fs.writeFile(path.join(stage, UDHCPC_SCRIPT_PATH), udhcpcScript(), { mode: 0o755 })

    step(`initramfs (cpio newc, ${compression} -${level})`)
    const archive = path.join(work, 'initrd.cpio')
    const { entries, bytes: uncompressedBytes } = await writeNewcArchive(stage, archive)
    const initrd = path.join(outDir, 'initrd')
    const measure = opts.measureParts !== false
    const partJob = measure ? measureParts(stage, work, partDirs, compression, level, signal) : Promise.resolve(null)
    const [packed, partSizes] = await Promise.all([
      compressInitramfs(archive, initrd, compression, { level, ...(signal ? { signal } : {}) }),
      partJob,
    ])
    const decompressSeconds = await timeDecompression(initrd, compression, { ...(signal ? { signal } : {}) })

    const size = async (rels: string[]) => {
      let total = 0
      for (const r of rels) {
        const p = path.join(stage, r)
        const st = await fs.lstat(p)
        total += st.isDirectory() ? await regularFileBytes(p) : st.size
      }
      return total
    }
    const programsBytes =
      (await regularFileBytes(stage)) -
      (await size([...partDirs.modules, ...partDirs.hwimage, ...partDirs.busybox, ...partDirs.scripts]))
    const kernelBytes = (await fs.stat(path.join(outDir, 'vmlinuz'))).size
    const total = kernelBytes + packed.bytes
    const manifest: DeployManifest = {
      version: 1,
      builtAt: new Date().toISOString(),
      kernel: {
        package: path
          .basename(tree.source)
          .replace(/\.deb$/, '')
          .replace('%3a', ':'),
        version: tree.version,
        file: 'vmlinuz',
        bytes: kernelBytes,
        rdZstd,
        rdXz,
      },
      initramfs: {
        file: 'initrd',
        format: 'cpio newc',
        compression,
        level,
        bytes: packed.bytes,
        uncompressedBytes,
        entries,
        compressSeconds: packed.seconds,
        decompressSeconds,
      },
      total: { bytes: total, goalBytes: DEPLOY_SIZE_GOAL, withinGoal: total <= DEPLOY_SIZE_GOAL },
      parts: {
        modules: {
          count: selection.modules.length,
          bytes: await size(partDirs.modules),
          compressedBytes: partSizes?.modules ?? null,
          compression: 'none',
          signed: true,
        },
        hwimage: {
          nodeVersion: sea.nodeVersion,
          bytes: sea.bytes,
          compressedBytes: partSizes?.hwimage ?? null,
          bundleBytes: sea.bundleBytes,
          addonBytes: sea.addonBytes,
        },
        programs: { programs, libraries, bytes: programsBytes, compressedBytes: partSizes?.rest ?? null },
        busybox: {
          package: path
            .basename(busyboxDeb)
            .replace(/\.deb$/, '')
            .replace('%3a', ':'),
          bytes: await size(partDirs.busybox),
          compressedBytes: partSizes?.busybox ?? null,
        },
        scripts: { bytes: await size(partDirs.scripts), compressedBytes: partSizes?.scripts ?? null },
      },
      cmdline: DEPLOY_CMDLINE,
    }
    await fs.writeFile(path.join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
    return manifest
  } catch (e) {
    throw withContext('building the deploy environment', e)
  } finally {
    await fs.rm(work, { recursive: true, force: true })
  }
}

async function makeSkeleton(stage: string): Promise<void> {
  for (const d of [
    'usr/bin',
    'usr/sbin',
    'usr/lib',
    'usr/lib64',
    'etc',
    'dev',
    'proc',
    'sys',
    'run',
    'tmp',
    'root',
    'var/log',
    'mnt',
  ]) {
    await fs.mkdir(path.join(stage, d), { recursive: true })
  }
  await fs.chmod(path.join(stage, 'tmp'), 0o1777)
  for (const [link, target] of Object.entries(MERGED_USR_LINKS)) await fs.symlink(target, path.join(stage, link))
  await fs.writeFile(path.join(stage, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n')
  await fs.writeFile(path.join(stage, 'etc/group'), 'root:x:0:\n')
  await fs.writeFile(path.join(stage, 'etc/hostname'), 'hwimage-deploy\n')
  await fs.writeFile(path.join(stage, 'etc/resolv.conf'), '')
}

// Every applet as a link to busybox at the path busybox names for it (merged into usr/),
// unless a program from the host already sits there.
async function linkApplets(stage: string): Promise<void> {
  const list = (await run([path.join(stage, 'usr/bin/busybox'), '--list-full'])).stdout.split('\n').filter(Boolean)
  for (const applet of list) {
    const rel = mergedPath('/' + applet)
    const to = path.join(stage, rel)
    const name = path.basename(rel)
    if (await exists(to)) continue
    // A host program of the same name elsewhere on PATH wins too (usr/sbin vs usr/bin).
    if ((await exists(path.join(stage, 'usr/bin', name))) || (await exists(path.join(stage, 'usr/sbin', name))))
      continue
    await fs.mkdir(path.dirname(to), { recursive: true })
    await fs.symlink(path.relative(path.dirname(to), path.join(stage, 'usr/bin/busybox')), to)
  }
}

// Each part compressed on its own, the rest (programs and libraries) as what is left.
async function measureParts(
  stage: string,
  work: string,
  parts: Record<'modules' | 'hwimage' | 'busybox' | 'scripts', string[]>,
  compression: InitramfsCompression,
  level: number,
  signal?: AbortSignal,
): Promise<Record<'modules' | 'hwimage' | 'busybox' | 'scripts' | 'rest', number>> {
  const dir = path.join(work, 'parts')
  const out = {} as Record<'modules' | 'hwimage' | 'busybox' | 'scripts' | 'rest', number>
  const all = Object.values(parts).flat()
  const names = [...Object.keys(parts), 'rest'] as (keyof typeof out)[]
  for (const name of names) {
    const root = path.join(dir, name)
    await fs.mkdir(root, { recursive: true })
    const rels = name === 'rest' ? await restOf(stage, all) : parts[name as keyof typeof parts]
    for (const r of rels) {
      await fs.mkdir(path.dirname(path.join(root, r)), { recursive: true })
      await fs.cp(path.join(stage, r), path.join(root, r), { recursive: true, verbatimSymlinks: true })
    }
    const archive = path.join(dir, `${name}.cpio`)
    await writeNewcArchive(root, archive, { nodes: [] })
    out[name] = (
      await compressInitramfs(archive, `${archive}.${compression}`, compression, {
        level,
        ...(signal ? { signal } : {}),
      })
    ).bytes
    await fs.rm(root, { recursive: true, force: true })
  }
  return out
}

// Top-level stage paths (walking into usr/bin etc.) not covered by the named parts.
async function restOf(stage: string, covered: string[]): Promise<string[]> {
  const out: string[] = []
  const walk = async (rel: string) => {
    for (const e of await fs.readdir(path.join(stage, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name
      if (covered.includes(r)) continue
      if (e.isDirectory() && covered.some((c) => c.startsWith(r + '/'))) await walk(r)
      else out.push(r)
    }
  }
  await walk('')
  return out
}

async function exists(p: string): Promise<boolean> {
  return await fs.lstat(p).then(
    () => true,
    () => false,
  )
}
