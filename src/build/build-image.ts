// `hwimage build`: spec → rootfs → filesystems → disk image → outputs, one way.
// What the user can get wrong is checked first (preflight.ts, spec-modules.ts), so a
// mistake ends the build in seconds, not after mmdebstrap's minutes.

import { mkdtemp, rm, writeFile, readdir, lstat } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { InputError, withContext } from '../errors.js'
import { run } from '../tools/run.js'
import { applyServerKernel } from './server-kernel.js'
import { RELEASES, type BuildSpec } from './spec.js'
import type { ImageIds } from './customize-script.js'
import { makeRootfs, writeStage } from './rootfs.js'
import { planLayout } from './layout.js'
import { writeDiskImage } from './disk-image.js'
import { writeBmap, writeSums, writeZst } from './outputs.js'
import { qcow2Name, writeQcow2 } from './qcow2-output.js'
import { deriveIds, newestPackageEpoch, normaliseTree, specDigest } from './reproducible.js'
import {
  checkCacheDir,
  checkFileSizeLimit,
  checkRoot,
  checkRootFloor,
  checkFreeSpace,
  checkSpecFiles,
  MIN_TREE_BYTES,
  outputBytesEstimate,
  plannedRootFsBytes,
  prepareOutputDir,
} from './preflight.js'
import { checkSpecModulesEarly } from './spec-modules.js'
import { installedPackages, kernelInfo, partitionRows, type Manifest } from './manifest.js'

export const HWIMAGE_VERSION = '0.1.0'

/** Options of one build. */
export interface BuildOptions {
  outDir: string
  /** Directory relative `files[].source` paths are read from. */
  specDir: string
  /** Scratch space for the root tree (default: a new directory under /var/tmp). */
  workDir?: string
  keepWorkDir?: boolean
  verbose?: boolean
  signal?: AbortSignal
  onStep?: (step: string) => void
  /** Something the user should know that does not stop the build. */
  onWarning?: (message: string) => void
  /** Names the spec in errors, as parseSpec() was told ("spec \"x.yaml\""). */
  source?: string
  /** Where kernel packages are fetched for the module-name check (default: the kernel cache). */
  kernelCacheDir?: string
}

/** Builds an image from a validated spec; returns its manifest (also written to outDir/manifest.json). */
export async function buildImage(spec: BuildSpec, opts: BuildOptions): Promise<Manifest> {
  const started = Date.now()
  const step = opts.onStep ?? (() => {})
  const source = opts.source ?? 'spec'
  step('checks (output directory, files, sizes, free space)')
  checkRoot()
  checkRootFloor(spec, source)
  await prepareOutputDir(opts.outDir)
  await checkSpecFiles(spec, opts.specDir, source)
  await checkCacheDir(spec, source)
  if (spec.size !== 'fit') await checkFileSizeLimit(opts.outDir, spec.size, source)
  await checkFreeSpace([
    { dir: opts.outDir, bytes: outputBytesEstimate(plannedRootFsBytes(spec), MIN_TREE_BYTES), what: 'image and .zst' },
    { dir: opts.workDir ?? '/var/tmp', bytes: MIN_TREE_BYTES, what: 'root tree' },
  ])
  if (spec.kernel.flavor === 'server' && spec.kernel.modules.add.length + spec.kernel.modules.remove.length > 0) {
    step('kernel module names (kernel package)')
    const checked = await checkSpecModulesEarly(spec, {
      source,
      ...(opts.kernelCacheDir ? { cacheDir: opts.kernelCacheDir } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    })
    if (!checked.checked) opts.onWarning?.(`kernel.modules not checked yet: ${checked.reason}`)
  }
  const work = opts.workDir ?? (await mkdtemp('/var/tmp/hwimage-build-'))
  const rootDir = join(work, 'root')
  const stage = join(work, 'stage')
  // Fixed by the spec and hwimage's version, so two builds of one spec are the same bytes (reproducible.ts).
  const derived = deriveIds(spec, HWIMAGE_VERSION)
  const ids: ImageIds = derived
  try {
    await writeStage(stage, spec, ids, opts.specDir)
    step('root tree (mmdebstrap)')
    await makeRootfs(spec, rootDir, stage, { signal: opts.signal, verbose: opts.verbose }).catch((e) => {
      throw withContext('making the root tree with mmdebstrap', e)
    })
    const epoch = sourceDateEpoch() ?? (await newestPackageEpoch(rootDir))
    if (spec.kernel.flavor === 'server') {
      step('server kernel (module set, xz, depmod, initramfs)')
      await applyServerKernel(rootDir, spec.kernel.modules, { signal: opts.signal, sourceDateEpoch: epoch }).catch(
        (e) => {
          throw withContext('cutting the kernel to the server module set', e)
        },
      )
    } else {
      // The package's postinst made it without SOURCE_DATE_EPOCH: again, sorted and with clamped times.
      step('initramfs (reproducible)')
      await run(['chroot', rootDir, 'update-initramfs', '-u', '-k', 'all'], {
        env: { SOURCE_DATE_EPOCH: String(epoch) },
        ...(opts.signal ? { signal: opts.signal } : {}),
      })
    }
    step(`tree normalised to SOURCE_DATE_EPOCH ${epoch} (${new Date(epoch * 1000).toISOString()})`)
    await normaliseTree(rootDir, epoch)
    const packages = await installedPackages(rootDir)
    const kernel = await kernelInfo(rootDir, spec.kernel.flavor)
    const content = await contentSize(rootDir)
    const layout = planLayout({
      size: spec.size,
      rootSize: spec.root_size,
      contentBytes: content.bytes,
      inodes: content.inodes,
    })
    await checkFileSizeLimit(opts.outDir, layout.imageBytes, source)
    await checkFreeSpace([
      {
        dir: opts.outDir,
        // The qcow2 is about as large as the .zst (qcow2-output.ts).
        bytes:
          outputBytesEstimate(layout.rootFsBytes, content.bytes) +
          (spec.qcow2 === false ? 0 : Math.round(content.bytes / 3)),
        what: spec.qcow2 === false ? 'image and .zst' : 'image, .zst and .qcow2',
      },
    ])

    const image = join(opts.outDir, `${spec.name}.img`)
    const { gpt } = await writeDiskImage({
      image,
      rootDir,
      layout,
      ids,
      sourceDateEpoch: epoch,
      signal: opts.signal,
      onStep: step,
    })
    step('bmap')
    const { path: bmap, mappedBytes } = await writeBmap(image)
    step('zstd')
    const zst = await writeZst(image, opts.signal)
    const outputs = [image, zst, bmap]
    if (spec.qcow2 !== false) {
      step(`qcow2 (${spec.qcow2} clusters)`)
      outputs.push(await writeQcow2(image, join(opts.outDir, qcow2Name(spec.name)), spec.qcow2, opts.signal))
    }
    step('digests and manifest')
    const files = await writeSums(opts.outDir, outputs)
    const manifest: Manifest = {
      hwimage: { manifestVersion: 1, version: HWIMAGE_VERSION },
      name: spec.name,
      spec,
      packages,
      kernel,
      partitions: partitionRows(gpt, ids),
      image: {
        file: `${spec.name}.img`,
        sizeBytes: layout.imageBytes,
        mappedBytes,
        sectorSize: gpt.sectorSize,
        diskGuid: gpt.diskGuid,
      },
      files,
      inputs: {
        specSha256: specDigest(spec),
        sourceDateEpoch: epoch,
        mirrors: [spec.mirror, spec.security_mirror],
        suites: mirrorSuites(spec),
      },
      build: {
        seconds: Math.round((Date.now() - started) / 100) / 10,
        date: new Date().toISOString(),
        host: hostname(),
      },
    }
    await writeFile(join(opts.outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
    return manifest
  } finally {
    if (!opts.keepWorkDir && !opts.workDir) await rm(work, { recursive: true, force: true })
  }
}

/** SOURCE_DATE_EPOCH from the environment, when the caller fixes it; undefined when unset. */
function sourceDateEpoch(): number | undefined {
  const v = process.env.SOURCE_DATE_EPOCH
  if (v === undefined || v === '') return undefined
  if (!/^\d+$/.test(v))
    throw new InputError('USAGE', `Cannot build: SOURCE_DATE_EPOCH is "${v}", not a number of seconds`, {
      hint: 'unset it (the newest package dates the build) or give seconds since 1970, e.g. SOURCE_DATE_EPOCH=$(date +%s)',
    })
  return Number(v)
}

/** The apt sources a build reads, as mmdebstrap is given them. */
function mirrorSuites(spec: BuildSpec): string[] {
  const rel = RELEASES[spec.release]
  return [
    `${spec.mirror} ${spec.release} main`,
    `${spec.mirror} ${rel.updates} main`,
    `${spec.security_mirror} ${rel.security} main`,
  ]
}

/** Bytes (rounded up to 4 KiB blocks) and inodes the root tree needs. */
async function contentSize(dir: string): Promise<{ bytes: number; inodes: number }> {
  let bytes = 0
  let inodes = 0
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      inodes++
      const p = join(d, e.name)
      if (e.isDirectory()) {
        bytes += 4096
        await walk(p)
      } else {
        bytes += Math.ceil((await lstat(p)).size / 4096) * 4096
      }
    }
  }
  await walk(dir)
  return { bytes, inodes }
}
