// What runs inside the image's tree at build time, as one script of quoted argv
// lines (mmdebstrap runs it in its chroot). The disk does not exist yet, so GRUB's
// probes are answered by a stand-in grub-probe (diverted in, then out again) that
// reports the root filesystem's UUID fixed in advance; grub.cfg is then made by
// update-grub exactly as on an installed Debian system, and later upgrades run the
// real grub-probe against the real disk.

import { quoteArgv } from '../tools/run.js'

/** Identifiers fixed before the filesystems are made, so configuration can name them. */
export interface ImageIds {
  /** ext4 UUID of the root filesystem. */
  rootUuid: string
  /** FAT volume ID of the ESP, as fstab writes it: "ABCD-1234". */
  espVolumeId: string
  /** ext4 directory hash seed (a UUID); mke2fs draws one when absent. */
  rootHashSeed?: string
  /** GPT disk GUID; random when absent. */
  diskGuid?: string
  /** GPT unique partition GUIDs by partition number; random when absent. */
  partitionGuids?: Record<number, string>
}

/** /etc/default/grub.d/50-hwimage.cfg: serial and VGA consoles, no "quiet", short menu. */
export function grubDefaults(): string {
  return [
    '# hwimage: consoles on tty0 and ttyS0 (server serial-over-LAN), kernel messages',
    '# visible, a short menu. Sourced by update-grub after /etc/default/grub.',
    'GRUB_TIMEOUT=1',
    'GRUB_CMDLINE_LINUX_DEFAULT=""',
    'GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"',
    'GRUB_TERMINAL="console serial"',
    'GRUB_SERIAL_COMMAND="serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1"',
    'GRUB_DISABLE_OS_PROBER=true',
    '',
  ].join('\n')
}

/** The build-time grub-probe: answers for the root filesystem hwimage is about to make. */
export function fakeGrubProbe(ids: ImageIds): string {
  // Targets asked by grub-mkconfig and its 00_header/10_linux scripts (GRUB 2.06).
  return `#!/bin/sh
# hwimage build-time stand-in for grub-probe: the image's disk does not exist while
# the image is built. Removed (dpkg-divert --rename --remove) before the build ends.
target=
while [ $# -gt 0 ]; do
  case "$1" in
    --target=*) target="\${1#--target=}" ;;
    -t) shift; target="$1" ;;
  esac
  shift
done
case "$target" in
  # 10_linux writes root=$GRUB_DEVICE when /dev/disk/by-uuid/… is absent (it is, here).
  device) echo UUID=${ids.rootUuid} ;;
  fs) echo ext2 ;;
  fs_uuid) echo ${ids.rootUuid} ;;
  fs_label) echo root ;;
  partmap) echo gpt ;;
  abstraction|cryptodisk_uuid|msdos_parttype|partuuid) ;;
  drive|compatibility_hint) echo 'hd0,gpt1' ;;
  bios_hints|hints_string) echo '--hint-bios=hd0,gpt1 --hint-efi=hd0,gpt1 --hint-baremetal=ahci0,gpt1' ;;
  *) echo "grub-probe (hwimage build): unsupported target $target" >&2; exit 1 ;;
esac
`
}

/** GRUB's early config for the BIOS core image: find root by UUID, then the normal config. */
export function biosEarlyConfig(ids: ImageIds): string {
  return `search.fs_uuid ${ids.rootUuid} root hd0,gpt1\nset prefix=($root)/boot/grub\n`
}

/** The stub the signed GRUB reads from the ESP (EFI/debian/grub.cfg), as grub-install writes it. */
export function espGrubStub(ids: ImageIds): string {
  return `search.fs_uuid ${ids.rootUuid} root hd0,gpt1\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n`
}

/** Modules built into the BIOS core image: enough to find and read /boot/grub. */
export const BIOS_CORE_MODULES = [
  'biosdisk',
  'part_gpt',
  'ext2',
  'search_fs_uuid',
  'search',
  'configfile',
  'normal',
] as const

/** The diversion of grub-probe to the stand-in: before and after a script that runs update-grub. */
export function grubProbeDivertIn(probe: string): (readonly string[])[] {
  return [
    ['dpkg-divert', '--local', '--rename', '--add', '/usr/sbin/grub-probe'],
    ['ln', '-sf', probe, '/usr/sbin/grub-probe'],
  ]
}
export function grubProbeDivertOut(): (readonly string[])[] {
  return [
    ['rm', '-f', '/usr/sbin/grub-probe'],
    ['dpkg-divert', '--local', '--rename', '--remove', '/usr/sbin/grub-probe'],
  ]
}

/**
 * GRUB's BIOS core image made in the tree (the build's customize step, and convert for an
 * input without one): the i386-pc modules beside it as grub-install copies them, boot.img,
 * and core.img with the early config that finds the root by UUID. /boot/grub/i386-pc exists.
 */
export function biosCoreLines(ids: ImageIds): (readonly string[] | string)[] {
  return [
    // BIOS: GRUB's modules next to the core image, as grub-install copies them.
    'cp /usr/lib/grub/i386-pc/*.mod /usr/lib/grub/i386-pc/*.lst /boot/grub/i386-pc/',
    ['cp', '/usr/lib/grub/i386-pc/boot.img', '/boot/grub/i386-pc/boot.img'],
    `printf '%s' ${quoteArgv([biosEarlyConfig(ids)])} > /tmp/hwimage-early.cfg`,
    [
      'grub-mkimage',
      '-O',
      'i386-pc',
      '-o',
      '/boot/grub/i386-pc/core.img',
      '-c',
      '/tmp/hwimage-early.cfg',
      '-p',
      '(hd0,gpt1)/boot/grub',
      ...BIOS_CORE_MODULES,
    ],
    ['rm', '-f', '/tmp/hwimage-early.cfg'],
  ]
}

/** The script run in the tree's chroot (lines are quoted argv; `sh -e` stops at the first failure). */
export function customizeScript(ids: ImageIds): string {
  const lines: (readonly string[] | string)[] = [
    '# hwimage build customisation, run inside the image tree by mmdebstrap',
    ...grubProbeDivertIn('/usr/local/lib/hwimage/grub-probe'),
    // device.map is not needed on a GPT + UUID setup; 10_linux checks the device exists.
    ['mkdir', '-p', '/boot/grub', '/boot/grub/i386-pc', '/boot/efi'],
    ['update-grub'],
    ['grub-editenv', '/boot/grub/grubenv', 'create'],
    ...biosCoreLines(ids),
    ...grubProbeDivertOut(),
    ['rm', '-rf', '/usr/local/lib/hwimage'],
    // Per-machine identity is made on first boot, not shared by every copy of the image.
    'rm -f /etc/ssh/ssh_host_*',
    ['truncate', '-s', '0', '/etc/machine-id'],
    ['rm', '-f', '/var/lib/dbus/machine-id'],
    'rm -rf /var/lib/apt/lists/* /var/log/*.log /var/cache/debconf/*-old',
  ]
  return lines.map((l) => (typeof l === 'string' ? l : quoteArgv(l))).join('\n') + '\n'
}
