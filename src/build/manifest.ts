// manifest.json: what a build made — spec, packages, kernel, partitions, sizes,
// output digests, build time. Read by `hwimage inspect`, the installer and the lab.

import { readdir, stat, lstat } from 'node:fs/promises'
import { join } from 'node:path'
import { run } from '../tools/run.js'
import type { Gpt } from '../disk/gpt.js'
import type { BuildSpec } from './spec.js'
import type { ImageIds } from './customize-script.js'
import type { OutputFile } from './outputs.js'

/** The kernel an image ships. */
export interface KernelInfo {
  flavor: string
  version: string
  /** Installed bytes of vmlinuz plus /lib/modules/<version>. */
  footprintBytes: number
  initrdBytes: number
  /** Names of the modules shipped (without .ko and compression suffix). */
  modules: string[]
}

/** manifest.json's shape. */
export interface Manifest {
  hwimage: { manifestVersion: 1; version: string }
  name: string
  spec: BuildSpec
  packages: Record<string, string>
  kernel: KernelInfo
  partitions: {
    number: number
    name: string
    typeGuid: string
    uniqueGuid: string
    firstLba: string
    lastLba: string
    filesystem: string
    uuid: string
    label: string
  }[]
  image: { file: string; sizeBytes: number; mappedBytes: number; sectorSize: number; diskGuid: string }
  files: OutputFile[]
  /**
   * What the build depended on besides `packages` (the versions installed), so that it can
   * be repeated: the spec's digest (as validated, keys sorted), SOURCE_DATE_EPOCH, the apt
   * sources. Absent in manifests of hwimage before reproducible builds.
   */
  inputs?: { specSha256: string; sourceDateEpoch: number; mirrors: string[]; suites: string[] }
  /** The only part two builds of the same inputs differ in. */
  build: { seconds: number; date: string; host: string }
}

/** name → version of every package installed in a tree (its dpkg database, read from outside). */
export async function installedPackages(rootDir: string): Promise<Record<string, string>> {
  const r = await run([
    'dpkg-query',
    `--admindir=${join(rootDir, 'var/lib/dpkg')}`,
    '-W',
    '-f',
    '${db:Status-Abbrev}\t${Package}\t${Version}\n',
  ])
  const out: Record<string, string> = {}
  for (const line of r.stdout.split('\n')) {
    const [status, name, version] = line.split('\t')
    if (status?.startsWith('ii') && name && version) out[name] = version
  }
  return out
}

/** Sum of apparent sizes of the files below a directory (symlinks count as themselves). */
export async function treeBytes(dir: string): Promise<{ bytes: number; files: string[] }> {
  let bytes = 0
  const files: string[] = []
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) await walk(p)
      else {
        bytes += (await lstat(p)).size
        files.push(p)
      }
    }
  }
  await walk(dir)
  return { bytes, files }
}

/** The kernel found in a tree: version, footprint, initrd size, module names. */
export async function kernelInfo(rootDir: string, flavor: string): Promise<KernelInfo> {
  const versions = (await readdir(join(rootDir, 'lib/modules'))).sort()
  const version = versions[versions.length - 1]
  if (!version) throw new Error('the image has no /lib/modules/<version>')
  const vmlinuz = await stat(join(rootDir, 'boot', `vmlinuz-${version}`))
  const initrd = await stat(join(rootDir, 'boot', `initrd.img-${version}`))
  const mods = await treeBytes(join(rootDir, 'lib/modules', version))
  const modules = mods.files
    .map((f) => /([^/]+)\.ko(\.(xz|zst|gz))?$/.exec(f)?.[1])
    .filter((m): m is string => m !== undefined)
    .map((m) => m.replaceAll('-', '_'))
    .sort()
  return { flavor, version, footprintBytes: vmlinuz.size + mods.bytes, initrdBytes: initrd.size, modules }
}

/** The manifest's partition rows from the written table and the ids. */
export function partitionRows(gpt: Gpt, ids: ImageIds): Manifest['partitions'] {
  return gpt.partitions.map((p) => {
    const fs =
      p.number === 1
        ? { filesystem: 'ext4', uuid: ids.rootUuid, label: 'root' }
        : p.number === 15
          ? { filesystem: 'vfat', uuid: ids.espVolumeId, label: 'ESP' }
          : { filesystem: 'none', uuid: '', label: '' }
    return {
      number: p.number,
      name: p.name,
      typeGuid: p.typeGuid,
      uniqueGuid: p.uniqueGuid,
      firstLba: String(p.firstLba),
      lastLba: String(p.lastLba),
      ...fs,
    }
  })
}
