// spec → root filesystem tree. mmdebstrap against Debian's mirror makes the tree
// (in root mode it owns the chroot's /proc, /sys and /dev); the customisation that
// must run inside the tree (update-grub, GRUB's BIOS core image) runs as one
// script of quoted argv lines from customize-script.ts. A package cache outside the
// tree (spec.cache) is synced in before and out after, so a rebuild downloads only
// what changed.

import { mkdir, writeFile, chmod, copyFile } from 'node:fs/promises'
import { join, dirname, resolve } from 'node:path'
import { InputError } from '../errors.js'
import { run } from '../tools/run.js'
import { FLAVORS, RELEASES, type BuildSpec } from './spec.js'
import { customizeScript, grubDefaults, fakeGrubProbe, type ImageIds } from './customize-script.js'
import { SERVER_FLAVOR_PACKAGES } from './server-kernel.js'

/** Packages every image gets besides the kernel (cloud-image style, DESIGN.md). */
export const BASE_PACKAGES = [
  'systemd-sysv',
  'udev',
  'kmod',
  'dbus',
  'systemd-timesyncd',
  'ifupdown',
  'isc-dhcp-client',
  'netbase',
  'iproute2',
  'iputils-ping',
  'ifenslave',
  'vlan',
  'openssh-server',
  'sudo',
  'ca-certificates',
  'curl',
  'less',
  'locales',
  'cloud-init',
  'cloud-guest-utils',
  'fdisk',
  'gdisk',
  'e2fsprogs',
  'dosfstools',
  'initramfs-tools',
  // initramfs-tools compresses with zstd when the program is there (gzip otherwise).
  'zstd',
  // UEFI with Secure Boot: Microsoft-signed shim, Debian-signed GRUB; BIOS: GRUB i386-pc.
  'grub-pc',
  'grub-efi-amd64-signed',
  'shim-signed',
] as const

/** debconf answers set before GRUB's packages install, so upgrades keep the image bootable. */
export const DEBCONF_SELECTIONS =
  [
    // No disk is known at build time: grub-pc's postinst must not run grub-install on
    // upgrades (the core.img we embed keeps loading the modules copied next to it in
    // /boot/grub/i386-pc, so the pair stays consistent); update-grub still runs.
    'grub-pc grub-pc/install_devices multiselect',
    'grub-pc grub-pc/install_devices_empty boolean true',
    // The ESP is written at build time; no NVRAM exists to update.
    'grub-efi-amd64 grub2/update_nvram boolean false',
    'grub-pc grub2/update_nvram boolean false',
  ].join('\n') + '\n'

/** The packages a spec installs. */
export function packagesFor(spec: BuildSpec): string[] {
  const flavor = spec.kernel.flavor === 'server' ? SERVER_FLAVOR_PACKAGES : []
  return [...BASE_PACKAGES, FLAVORS[spec.kernel.flavor], ...flavor, ...spec.packages]
}

/** The mmdebstrap argv for a spec; `stage` holds the files synced into the tree. */
export function mmdebstrapArgv(spec: BuildSpec, rootDir: string, stage: string): string[] {
  const rel = RELEASES[spec.release]
  const argv = [
    'mmdebstrap',
    '--mode=root',
    '--variant=minbase',
    `--architectures=${spec.architecture}`,
    `--include=${packagesFor(spec).join(',')}`,
    '--aptopt=Acquire::Retries "3"',
    '--dpkgopt=force-unsafe-io',
    `--essential-hook=upload ${stage}/debconf.txt /tmp/hwimage-debconf.txt`,
    '--essential-hook=chroot "$1" debconf-set-selections /tmp/hwimage-debconf.txt',
  ]
  if (spec.cache) {
    // The cache must survive essential/unlink for sync-out to see every package.
    argv.push(
      '--skip=essential/unlink',
      `--setup-hook=mkdir -p "$1/var/cache/apt/archives/"`,
      `--setup-hook=sync-in ${spec.cache} /var/cache/apt/archives/`,
      `--customize-hook=sync-out /var/cache/apt/archives ${spec.cache}`,
    )
  }
  argv.push(
    `--customize-hook=sync-in ${stage}/tree /`,
    '--customize-hook=chroot "$1" /bin/sh -e /root/hwimage-customize.sh',
    '--customize-hook=rm -f "$1/root/hwimage-customize.sh" "$1/tmp/hwimage-debconf.txt"',
    spec.release,
    rootDir,
    spec.mirror,
    `deb ${spec.mirror} ${rel.updates} main`,
    `deb ${spec.security_mirror} ${rel.security} main`,
  )
  return argv
}

/** Files hwimage puts into every image, by path inside the image. */
export function imageFiles(ids: ImageIds): Record<string, string> {
  return {
    '/etc/fstab': [
      '# <file system> <mount point> <type> <options> <dump> <pass>',
      `UUID=${ids.rootUuid} / ext4 rw,discard,errors=remount-ro 0 1`,
      `UUID=${ids.espVolumeId} /boot/efi vfat umask=0077 0 1`,
      '',
    ].join('\n'),
    '/etc/default/grub.d/50-hwimage.cfg': grubDefaults(),
    '/etc/cloud/cloud.cfg.d/50-hwimage.cfg': [
      '# hwimage: first-boot data comes from a NoCloud (CIDATA) or config-2 volume',
      '# written by `hwimage install --seed` (docs/first-boot-contract.md).',
      'datasource_list: [ NoCloud, ConfigDrive, None ]',
      "# C.UTF-8 is built into libc: no locale-gen on first boot (cloud-init's default,",
      '# en_US.UTF-8, is not generated in a minimal image and fails cc_locale).',
      'locale: C.UTF-8',
      '',
    ].join('\n'),
    '/etc/hostname': 'localhost\n',
    '/usr/local/lib/hwimage/grub-probe': fakeGrubProbe(ids),
    '/root/hwimage-customize.sh': customizeScript(ids),
  }
}

/** Writes the staging directory mmdebstrap syncs into the tree: our files plus the spec's. */
export async function writeStage(stage: string, spec: BuildSpec, ids: ImageIds, specDir: string): Promise<void> {
  await mkdir(join(stage, 'tree'), { recursive: true })
  await writeFile(join(stage, 'debconf.txt'), DEBCONF_SELECTIONS)
  const files: { path: string; write: (to: string) => Promise<void>; mode?: number; field?: string }[] = []
  for (const [path, content] of Object.entries(imageFiles(ids))) {
    files.push({
      path,
      write: (to) => writeFile(to, content),
      mode: path.includes('grub-probe') || path.endsWith('.sh') ? 0o755 : 0o644,
    })
  }
  for (const [i, f] of spec.files.entries()) {
    const mode = f.mode ? parseInt(f.mode, 8) : 0o644
    const field = `files[${i}].path`
    if (f.content !== undefined) files.push({ path: f.path, write: (to) => writeFile(to, f.content!), mode, field })
    else files.push({ path: f.path, write: (to) => copyFile(resolve(specDir, f.source!), to), mode, field })
  }
  for (const f of files) {
    const to = join(stage, 'tree', f.path)
    try {
      await mkdir(dirname(to), { recursive: true })
      await f.write(to)
    } catch (e) {
      // Two files where one path is a directory of the other ("/etc/motd" and "/etc/motd/x").
      const code = (e as NodeJS.ErrnoException).code
      if (f.field && (code === 'ENOTDIR' || code === 'EISDIR' || code === 'EEXIST')) {
        throw new InputError(
          'SPEC_INVALID',
          `Invalid spec: field "${f.field}": "${f.path}" clashes with another file of the image (one path is a directory of the other)`,
          {
            hint: 'give each file its own path; hwimage writes /etc/fstab, /etc/hostname and /etc/default/grub.d/50-hwimage.cfg itself',
            cause: e,
          },
        )
      }
      throw e
    }
    if (f.mode !== undefined) await chmod(to, f.mode)
  }
}

/** Runs mmdebstrap: the root filesystem tree of the image in `rootDir`. */
export async function makeRootfs(
  spec: BuildSpec,
  rootDir: string,
  stage: string,
  opts: { signal?: AbortSignal; verbose?: boolean } = {},
): Promise<void> {
  if (spec.cache) await mkdir(spec.cache, { recursive: true })
  await run(mmdebstrapArgv(spec, rootDir, stage), { signal: opts.signal, inheritStderr: opts.verbose ?? false })
}
