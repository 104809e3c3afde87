// Every external program hwimage runs, with the Debian package that provides it.
// A missing program is reported as `apt-get install <package>`; `make setup`
// installs every package listed here (scripts/setup.sh reads this table).

/** Program name → Debian package. */
export const PROGRAMS = {
  mmdebstrap: 'mmdebstrap',
  'mkfs.ext4': 'e2fsprogs',
  e2fsck: 'e2fsprogs',
  dumpe2fs: 'e2fsprogs',
  filefrag: 'e2fsprogs',
  debugfs: 'e2fsprogs',
  'mkfs.vfat': 'dosfstools',
  'fsck.vfat': 'dosfstools',
  mcopy: 'mtools',
  mmd: 'mtools',
  mdir: 'mtools',
  mtype: 'mtools',
  mdel: 'mtools',
  sgdisk: 'gdisk',
  sfdisk: 'fdisk',
  blkdiscard: 'util-linux',
  fallocate: 'util-linux',
  // Every child is started through it (tools/run.ts spawnTool): PR_SET_PDEATHSIG.
  setpriv: 'util-linux',
  partx: 'util-linux',
  blockdev: 'util-linux',
  wipefs: 'util-linux',
  xargs: 'findutils',
  mkswap: 'util-linux',
  swapon: 'util-linux',
  swapoff: 'util-linux',
  mount: 'mount',
  umount: 'mount',
  losetup: 'util-linux',
  // hwimage convert: apt in a chroot of the image tree, in a private mount namespace; rdump's missing device nodes.
  unshare: 'util-linux',
  mknod: 'coreutils',
  lsblk: 'util-linux',
  findmnt: 'util-linux',
  zstd: 'zstd',
  xz: 'xz-utils',
  gzip: 'gzip',
  bmaptool: 'bmap-tools',
  'qemu-img': 'qemu-utils',
  'qemu-system-x86_64': 'qemu-system-x86',
  xorriso: 'xorriso',
  'ssh-keygen': 'openssh-client',
  ssh: 'openssh-client',
  modinfo: 'kmod',
  depmod: 'kmod',
  cpio: 'cpio',
  'dpkg-deb': 'dpkg',
  'apt-get': 'apt',
  'apt-cache': 'apt',
  nginx: 'nginx-light',
  // serve's tests check its boot answers with the real parsers.
  dnsmasq: 'dnsmasq-base',
  'grub-script-check': 'grub-common',
  // The deploy environment (src/deploy/): UEFI boot entries after an install; the Node base of its hwimage executable stripped.
  efibootmgr: 'efibootmgr',
  strip: 'binutils',
  ldd: 'libc-bin',
  // The catalog (src/catalog/): signing with a key in GNUPGHOME, verifying against a pinned keyring.
  gpg: 'gpg',
  gpgv: 'gpgv',
  // Tests stop the gpg-agent of their throwaway GNUPGHOME.
  gpgconf: 'gpgconf',
} as const

/** A program hwimage knows how to run. */
export type Program = keyof typeof PROGRAMS

/** Files (not programs) hwimage needs from the host, with their package. */
export const HOST_FILES = {
  '/usr/share/OVMF/OVMF_CODE_4M.ms.fd': 'ovmf',
  '/usr/share/OVMF/OVMF_VARS_4M.ms.fd': 'ovmf',
  '/usr/share/OVMF/OVMF_CODE_4M.fd': 'ovmf',
  '/usr/share/OVMF/OVMF_VARS_4M.fd': 'ovmf',
  '/usr/share/seabios/bios-256k.bin': 'seabios',
  '/usr/share/keyrings/debian-archive-keyring.gpg': 'debian-archive-keyring',
  '/usr/lib/shim/shimx64.efi.signed': 'shim-signed',
  '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed': 'grub-efi-amd64-signed',
} as const

/** The Debian package that provides a program, or undefined for one not in the table. */
export function packageOf(program: string): string | undefined {
  return (PROGRAMS as Record<string, string>)[program]
}
