// Downloads a Debian kernel package with apt, once: `linux-image-amd64` is a
// metapackage, so the versioned package it depends on (linux-image-6.1.0-NN-amd64)
// is what gets fetched, into <cache>/debs, and reused while apt's candidate stays
// the same version.

import fs from 'node:fs/promises'
import path from 'node:path'
import { HwimageError, InputError } from '../errors.js'
import { run } from '../tools/run.js'
import { aptCacheDependsArgv, aptCacheShowArgv, aptGetDownloadArgv } from './kernel-tool-argv.js'

/** The versioned linux-image package a metapackage depends on (itself when it is not a metapackage). */
export function versionedKernelPackage(pkg: string, dependsOutput: string): string {
  for (const line of dependsOutput.split('\n')) {
    const m = /^\s*Depends:\s*(linux-image-\S+)\s*$/.exec(line)
    if (m && m[1] !== pkg) return m[1]!
  }
  return pkg
}

/** The control fields of `apt-cache show` output that name a .deb: Package, Version, Architecture. */
export function debFileName(showOutput: string): string {
  const field = (name: string) => new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(showOutput)?.[1]
  const pkg = field('Package')
  const version = field('Version')
  const arch = field('Architecture')
  if (!pkg || !version || !arch)
    throw new InputError('NOT_FOUND', 'Cannot read apt-cache show output: Package, Version or Architecture missing')
  // apt-get download writes an epoch's colon as %3a.
  return `${pkg}_${version.replace(':', '%3a')}_${arch}.deb`
}

/** Downloads (or finds in the cache) the .deb of a kernel package; returns its path. */
export async function fetchKernelPackage(
  pkg: string,
  opts: { cacheDir: string; signal?: AbortSignal },
): Promise<string> {
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(pkg))
    throw new InputError('NOT_FOUND', `Cannot fetch kernel package "${pkg}": not a Debian package name`)
  const unknown = (e: unknown) =>
    new InputError('NOT_FOUND', `Cannot fetch kernel package "${pkg}": apt does not know it`, {
      hint: 'run apt-get update, or check the name',
      cause: e,
    })
  let versioned: string
  let file: string
  let version: string
  try {
    versioned = versionedKernelPackage(pkg, (await run(aptCacheDependsArgv(pkg), { signal: opts.signal })).stdout)
    const show = (await run(aptCacheShowArgv(versioned), { signal: opts.signal })).stdout
    file = debFileName(show)
    version = /^Version:\s*(\S+)/m.exec(show)![1]!
  } catch (e) {
    if (e instanceof HwimageError && (e.code === 'TOOL_FAILED' || e.code === 'NOT_FOUND')) throw unknown(e)
    throw e
  }
  const debs = path.join(opts.cacheDir, 'debs')
  await fs.mkdir(debs, { recursive: true })
  const target = path.join(debs, file)
  if (
    await fs.access(target).then(
      () => true,
      () => false,
    )
  )
    return target
  await run(aptGetDownloadArgv(versioned, version), { cwd: debs, signal: opts.signal })
  if (
    !(await fs.access(target).then(
      () => true,
      () => false,
    ))
  ) {
    throw new HwimageError(
      'NETWORK',
      `Cannot fetch kernel package "${versioned}": apt-get download did not write ${file}`,
    )
  }
  return target
}
