// The hardware kernel put into a root tree read out of a cloud image, the Debian way: apt
// against the image's own sources (so apt keeps upgrading it) installs linux-image-amd64,
// purges the kernel it had, and the kernel's hooks make its initramfs and run update-grub;
// for the `server` flavor the build's own applyServerKernel() then cuts the module tree and
// installs its upgrade hook (src/build/server-kernel.ts). Nothing of the image is mounted:
// the script runs in a chroot of the tree in a private mount namespace (unshare), with
// the host's /proc and /dev bound in for apt and dpkg, as mmdebstrap does for the build's
// customize step; GRUB's probes are answered by the build's stand-in grub-probe for the
// input's root UUID, diverted in and out again (build/tree-chroot.ts, shared with the
// build's customize script).

import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { applyServerKernel, SERVER_FLAVOR_PACKAGES } from '../build/server-kernel.js'
import { runInTreeChroot } from '../build/tree-chroot.js'
import { quoteArgv } from '../tools/run.js'

/** The kernel flavors a conversion can insert. */
export type ConvertFlavor = 'server' | 'generic'

/** What swapping the kernel found and did. */
export interface KernelSwap {
  /** linux-image-* packages the input had (name → version). */
  removedPackages: Record<string, string>
  /** The input's kernel versions (/lib/modules). */
  inputVersions: string[]
  /** The new kernel's version. */
  version: string
  /** Packages apt installed besides the kernel because something was missing (GRUB, shim). */
  addedForBoot: string[]
  /** Whether initramfs-tools was told MODULES=most (it was set to another value). */
  modulesMostSet: boolean
}

const INITRAMFS_CONF = '/etc/initramfs-tools/conf.d/90-hwimage-convert.conf'

/** A Debian generic kernel package (kept); any other linux-image-* is removed. */
export function isGenericKernelPackage(name: string): boolean {
  return name === 'linux-image-amd64' || /^linux-image-\d+\.\d+\.\d+-\d+-amd64(-unsigned)?$/.test(name)
}

/** linux-image-* packages installed in a dpkg status file. */
export function installedKernelPackages(status: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const stanza of status.split(/\n\n+/)) {
    const name = /^Package: (linux-image-\S+)$/m.exec(stanza)?.[1]
    if (!name || !/^Status: install ok installed$/m.test(stanza)) continue
    out[name] = /^Version: (\S+)$/m.exec(stanza)?.[1] ?? ''
  }
  return out
}

/** The MODULES= initramfs-tools ends up with (initramfs.conf, then conf.d in order). */
export function initramfsModules(files: string[]): string | undefined {
  let value: string | undefined
  for (const text of files) for (const m of text.matchAll(/^\s*MODULES=(\S+)/gm)) value = m[1]!.replace(/["']/g, '')
  return value
}

/** The script run in the tree's chroot (sh -e: the first failure stops it). */
export function swapScript(opts: { purge: string[]; install: string[]; keepLists: boolean }): string {
  const lines: (readonly string[] | string)[] = [
    '# hwimage convert: the hardware kernel, run inside the image tree',
    'export DEBIAN_FRONTEND=noninteractive',
    ['apt-get', '-o', 'Acquire::Retries=3', 'update'],
    ['apt-get', 'install', '-y', '--no-install-recommends', ...opts.install],
  ]
  if (opts.purge.length > 0) lines.push(['apt-get', 'purge', '-y', ...opts.purge])
  lines.push(['update-grub'], ['apt-get', 'clean'])
  if (!opts.keepLists) lines.push('rm -rf /var/lib/apt/lists/*')
  return lines.map((l) => (typeof l === 'string' ? l : quoteArgv(l))).join('\n') + '\n'
}

/** Swaps the tree's kernel for the hardware kernel; `rootUuid` answers GRUB's probes. */
export async function swapKernel(
  rootDir: string,
  opts: {
    flavor: ConvertFlavor
    rootUuid: string
    /** Packages to install so that missing boot files exist (grub-pc-bin, shim-signed, grub-efi-amd64-signed). */
    bootPackages: string[]
    signal?: AbortSignal
    verbose?: boolean
  },
): Promise<KernelSwap> {
  const sig = opts.signal ? { signal: opts.signal } : {}
  const status = await readFile(join(rootDir, 'var/lib/dpkg/status'), 'utf8')
  const before = installedKernelPackages(status)
  const removed = Object.fromEntries(Object.entries(before).filter(([n]) => !isGenericKernelPackage(n)))
  const inputVersions = (await readdir(join(rootDir, 'lib/modules')).catch(() => [] as string[])).sort()
  const lists = await readdir(join(rootDir, 'var/lib/apt/lists')).catch(() => [] as string[])
  const keepLists = lists.some((f) => f !== 'lock' && f !== 'partial' && f !== 'auxfiles')

  // initramfs-tools with MODULES=most carries every storage driver: the root is found on any controller.
  const confDir = join(rootDir, 'etc/initramfs-tools')
  const confFiles: string[] = []
  const main = await readFile(join(confDir, 'initramfs.conf'), 'utf8').catch(() => '')
  confFiles.push(main)
  for (const f of (await readdir(join(confDir, 'conf.d')).catch(() => [] as string[])).sort())
    confFiles.push(await readFile(join(confDir, 'conf.d', f), 'utf8').catch(() => ''))
  const modulesMostSet = (initramfsModules(confFiles) ?? 'most') !== 'most'
  if (modulesMostSet) {
    await mkdir(join(confDir, 'conf.d'), { recursive: true })
    await writeFile(
      join(rootDir, INITRAMFS_CONF),
      '# hwimage convert: every storage and block driver in the initramfs, so the root is found on any controller\nMODULES=most\n',
    )
  }

  // The server flavor's upgrade hook compresses modules with xz, which a cloud image may lack.
  const flavorPackages = opts.flavor === 'server' ? SERVER_FLAVOR_PACKAGES : []
  const install = ['linux-image-amd64', ...flavorPackages, ...opts.bootPackages]
  await runInTreeChroot(rootDir, swapScript({ purge: Object.keys(removed), install, keepLists }), {
    rootUuid: opts.rootUuid,
    ...sig,
    verbose: opts.verbose ?? false,
  })
  const after = (await readdir(join(rootDir, 'lib/modules')))
    .filter((v) => v.endsWith('-amd64') && !v.includes('cloud'))
    .sort()
  let version = after[after.length - 1]
  if (!version) throw new Error('apt installed linux-image-amd64 but /lib/modules has no generic kernel')
  if (opts.flavor === 'server') version = (await applyServerKernel(rootDir, { add: [], remove: [] }, sig)).version
  return { removedPackages: removed, inputVersions, version, addedForBoot: opts.bootPackages, modulesMostSet }
}
