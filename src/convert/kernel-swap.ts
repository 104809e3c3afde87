// The hardware kernel put into a root tree read out of a cloud image, the Debian way: apt
// against the image's own sources (so apt keeps upgrading it) installs linux-image-amd64,
// purges the kernel it had, and the kernel's hooks make its initramfs and run update-grub;
// for the `server` flavor the build's own applyServerKernel() then cuts the module tree and
// installs its upgrade hook (src/build/server-kernel.ts). Nothing of the image is mounted:
// the script runs in a chroot of the tree in a private mount namespace (unshare), with
// the host's /proc and /dev bound in for apt and dpkg, as mmdebstrap does for the build's
// customize step. GRUB's probes are answered by the build's stand-in grub-probe for the
// input's root UUID (customize-script.ts), diverted in and out again.

import { copyFile, lstat, mkdir, readdir, readFile, rename, rm, writeFile, chmod } from 'node:fs/promises'
import { join } from 'node:path'
import { fakeGrubProbe } from '../build/customize-script.js'
import { applyServerKernel } from '../build/server-kernel.js'
import { quoteArgv, run } from '../tools/run.js'

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

const PROBE = '/usr/local/lib/hwimage-convert/grub-probe'
const SCRIPT = '/root/hwimage-convert.sh'
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
    ['dpkg-divert', '--local', '--rename', '--add', '/usr/sbin/grub-probe'],
    ['ln', '-sf', PROBE, '/usr/sbin/grub-probe'],
    ['apt-get', '-o', 'Acquire::Retries=3', 'update'],
    ['apt-get', 'install', '-y', '--no-install-recommends', ...opts.install],
  ]
  if (opts.purge.length > 0) lines.push(['apt-get', 'purge', '-y', ...opts.purge])
  lines.push(
    ['update-grub'],
    ['rm', '-f', '/usr/sbin/grub-probe'],
    ['dpkg-divert', '--local', '--rename', '--remove', '/usr/sbin/grub-probe'],
    ['apt-get', 'clean'],
  )
  if (!opts.keepLists) lines.push('rm -rf /var/lib/apt/lists/*')
  return lines.map((l) => (typeof l === 'string' ? l : quoteArgv(l))).join('\n') + '\n'
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  )
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

  // The network: the host's resolver for apt; the image's own file is put back after.
  const resolv = join(rootDir, 'etc/resolv.conf')
  const resolvSaved = join(rootDir, 'etc/resolv.conf.hwimage-convert')
  const hadResolv = await exists(resolv)
  if (hadResolv) await rename(resolv, resolvSaved)
  await copyFile('/etc/resolv.conf', resolv)
  // No service starts in the chroot (invoke-rc.d asks policy-rc.d; 101: action not allowed).
  const policy = join(rootDir, 'usr/sbin/policy-rc.d')
  const policySaved = join(rootDir, 'usr/sbin/policy-rc.d.hwimage-convert')
  const hadPolicy = await exists(policy)
  if (hadPolicy) await rename(policy, policySaved)
  await writeFile(policy, '#!/bin/sh\nexit 101\n')
  await chmod(policy, 0o755)
  await mkdir(join(rootDir, 'usr/local/lib/hwimage-convert'), { recursive: true })
  await writeFile(join(rootDir, PROBE), fakeGrubProbe({ rootUuid: opts.rootUuid, espVolumeId: '' }))
  await chmod(join(rootDir, PROBE), 0o755)
  const install = ['linux-image-amd64', ...opts.bootPackages]
  await writeFile(join(rootDir, SCRIPT), swapScript({ purge: Object.keys(removed), install, keepLists }))
  try {
    const inner = quoteArgv(['chroot', rootDir, '/bin/sh', '-e', SCRIPT])
    const mounts = [
      quoteArgv(['mount', '--make-rprivate', '/']),
      quoteArgv(['mount', '-t', 'proc', 'proc', join(rootDir, 'proc')]),
      quoteArgv(['mount', '--rbind', '/dev', join(rootDir, 'dev')]),
    ].join(' && ')
    await run(['unshare', '--mount', '--fork', '--', 'sh', '-ec', `${mounts} && ${inner}`], {
      ...sig,
      inheritStderr: opts.verbose ?? false,
      env: { LC_ALL: 'C.UTF-8' },
    })
  } finally {
    await rm(join(rootDir, SCRIPT), { force: true })
    await rm(join(rootDir, 'usr/local/lib/hwimage-convert'), { recursive: true, force: true })
    await rm(policy, { force: true })
    if (hadPolicy) await rename(policySaved, policy)
    await rm(resolv, { force: true })
    if (hadResolv) await rename(resolvSaved, resolv)
  }
  const after = (await readdir(join(rootDir, 'lib/modules')))
    .filter((v) => v.endsWith('-amd64') && !v.includes('cloud'))
    .sort()
  let version = after[after.length - 1]
  if (!version) throw new Error('apt installed linux-image-amd64 but /lib/modules has no generic kernel')
  if (opts.flavor === 'server') version = (await applyServerKernel(rootDir, { add: [], remove: [] }, sig)).version
  return { removedPackages: removed, inputVersions, version, addedForBoot: opts.bootPackages, modulesMostSet }
}
