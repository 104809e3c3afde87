// Serial console excerpts for the lab's tests. Each says where it comes from: a real
// boot on this project's QEMU (trimmed, with the lines that matter kept verbatim), or
// written after Debian's messages where no real log of that failure exists yet.

/**
 * A good first boot under OVMF with Secure Boot (real: `hwimage boot` of a Debian 12
 * image on QEMU 7.2, virtio-blk, virtio-net-pci; the lines that matter, verbatim).
 */
export const GOOD_UEFI_SB_BOOT = [
  '\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01H\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01HBdsDxe: loading Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x1,0x0)\r',
  'BdsDxe: starting Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x1,0x0)\r',
  '\x1b[0m\x1b[30m\x1b[47mWelcome to GRUB!',
  '\rLoading Linux 6.1.0-56-amd64 ...Loading Linux 6.1.0-56-amd64 ...',
  '[    0.000000] Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)\r',
  '[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz-6.1.0-56-amd64 root=UUID=78b63ff5-a7f7-418a-9d26-26b7b6a6c340 ro console=tty0 console=ttyS0,115200n8\r',
  '[    0.000000] Kernel is locked down from EFI Secure Boot; see man kernel_lockdown.7\r',
  '[    0.000000] secureboot: Secure boot enabled\r',
  '[    7.629420] Run /init as init process\r',
  'Loading, please wait...\r',
  '[   12.057240] EXT4-fs (vda1): mounted filesystem with ordered data mode. Quota mode: none.\r',
  '[   13.188942] systemd[1]: systemd 252.39-1~deb12u2 running in system mode (+PAM +AUDIT +SELINUX +APPARMOR +IMA +SMACK +SECCOMP +GCRYPT -GNUTLS +OPENSSL +ACL +BLKID +CURL +ELFUTILS +FIDO2 +IDN2 -IDN +IPTC +KMOD +LIBCRYPTSETUP +LIBFDISK +PCRE2 -PWQUALITY +P11KIT +QRENCODE +TPM2 +BZIP2 +LZ4 +XZ +ZLIB +ZSTD -BPF_FRAMEWORK -XKBCOMMON +UTMP +SYSVINIT default-hierarchy=unified)\r',
  'Welcome to \x1b[1mDebian GNU/Linux 12 (bookworm)\x1b[0m!\r',
  "[   62.735662] cloud-init[267]: Cloud-init v. 22.4.2 running 'init-local' at Wed, 25 Nov 2026 21:17:18 +0000. Up 62.36 seconds.\r",
  '[   81.168500] cloud-init[324]: ci-info: ++++++++++++++++++++++++++++++++++++Net device info+++++++++++++++++++++++++++++++++++++\r',
  '[   81.171270] cloud-init[324]: ci-info: +--------+------+-------------------------+---------------+--------+-------------------+\r',
  '[   81.178468] cloud-init[324]: ci-info: | Device |  Up  |         Address         |      Mask     | Scope  |     Hw-Address    |\r',
  '[   81.185530] cloud-init[324]: ci-info: +--------+------+-------------------------+---------------+--------+-------------------+\r',
  '[   81.187416] cloud-init[324]: ci-info: | enp0s3 | True |        10.0.2.15        | 255.255.255.0 | global | 52:54:00:00:00:01 |\r',
  '[   81.194161] cloud-init[324]: ci-info: | enp0s3 | True | fec0::5054:ff:fe00:1/64 |       .       |  site  | 52:54:00:00:00:01 |\r',
  '[   81.200863] cloud-init[324]: ci-info: | enp0s3 | True | fe80::5054:ff:fe00:1/64 |       .       |  link  | 52:54:00:00:00:01 |\r',
  '[   81.203338] cloud-init[324]: ci-info: |   lo   | True |        127.0.0.1        |   255.0.0.0   |  host  |         .         |\r',
  '[   81.210291] cloud-init[324]: ci-info: |   lo   | True |         ::1/128         |       .       |  host  |         .         |\r',
  "hwimage-demo login: [  115.360880] cloud-init[421]: Cloud-init v. 22.4.2 running 'modules:config' at Wed, 25 Nov 2026 21:18:10 +0000. Up 114.56 seconds.\r",
  'HWIMAGE-READY hwimage-demo\r',
  'HWIMAGE-DF Filesystem       1B-blocks      Used   Available Use% Mounted on\r',
  'HWIMAGE-DF /dev/vda1      21000351744 907337728 19205750784   5% /\r',
  '[  139.436898] cloud-init[456]: Cloud-init v. 22.4.2 finished at Wed, 25 Nov 2026 21:18:35 +0000. Datasource DataSourceNoCloud [seed=/dev/vdb][dsmode=net].  Up 139.21 seconds\r',
  '',
].join('\n')

/** SeaBIOS with nothing bootable (real: QEMU 7.2, `-machine q35,graphics=off`, an empty virtio-blk disk). */
export const SEABIOS_NO_BOOT = [
  '\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)\r',
  'Booting from Hard Disk...\r',
  'Boot failed: not a bootable disk\r',
  '',
  'No bootable device.\r',
  '',
].join('\n')

/** OVMF with Secure Boot and nothing bootable (real: QEMU 7.2, OVMF_CODE_4M.ms.fd, an empty virtio-blk disk). */
export const OVMF_NO_BOOT = [
  '\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01H\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01HBdsDxe: failed to load Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x1,0x0): Not Found\r',
  'BdsDxe: loading Boot0002 "EFI Internal Shell" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(7C04A583-9E3E-4F1C-AD65-E05268D0B4D1)\r',
  'BdsDxe: starting Boot0002 "EFI Internal Shell" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(7C04A583-9E3E-4F1C-AD65-E05268D0B4D1)\r',
  'BdsDxe: failed to start Boot0002 "EFI Internal Shell" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(7C04A583-9E3E-4F1C-AD65-E05268D0B4D1): Security Violation\r',
  'BdsDxe: No bootable option or device was found.\r',
  'BdsDxe: Press any key to enter the Boot Manager Menu.\r',
].join('\n')

/** OVMF with Secure Boot refusing an unsigned bootloader (real: QEMU 7.2, OVMF_CODE_4M.ms.fd, an ESP holding Debian's unsigned shimx64.efi as BOOTX64.EFI). */
export const OVMF_SB_REJECTED = [
  '\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01H\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01HBdsDxe: loading Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x1,0x0)\r',
  'BdsDxe: failed to load Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x1,0x0): Access Denied\r',
  'BdsDxe: loading Boot0002 "EFI Internal Shell" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(7C04A583-9E3E-4F1C-AD65-E05268D0B4D1)\r',
  'BdsDxe: starting Boot0002 "EFI Internal Shell" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(7C04A583-9E3E-4F1C-AD65-E05268D0B4D1)\r',
  'BdsDxe: failed to start Boot0002 "EFI Internal Shell" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(7C04A583-9E3E-4F1C-AD65-E05268D0B4D1): Security Violation\r',
  'BdsDxe: No bootable option or device was found.\r',
  'BdsDxe: Press any key to enter the Boot Manager Menu.\r',
].join('\n')

/**
 * OVMF without Secure Boot and no driver for the disk's controller: it falls back to
 * its shell (real: QEMU 7.2, OVMF_CODE_4M.fd, the default image on megasas).
 */
export const OVMF_SHELL_NO_BOOT = [
  '\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01H\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01HBdsDxe: loading Boot0001 "EFI Internal Shell" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(7C04A583-9E3E-4F1C-AD65-E05268D0B4D1)\r',
  'BdsDxe: starting Boot0001 "EFI Internal Shell" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(7C04A583-9E3E-4F1C-AD65-E05268D0B4D1)\r',
  '\x1b[2J\x1b[01;01H\x1b[01;01HUEFI Interactive Shell v2.2\r',
  'EDK II\r',
  'UEFI v2.70 (EDK II, 0x00010000)\r',
  '\x1b[1m\x1b[33m\x1b[40mMapping table\x1b[0m\x1b[37m\x1b[40m\r',
  '\x1b[04;01H\x1b[1m\x1b[37m\x1b[40mmap\x1b[0m\x1b[37m\x1b[40m: No mapping found.\r',
  '\x1b[05;01HPress \x1b[1m\x1b[37m\x1b[40mESC\x1b[0m\x1b[37m\x1b[40m in 5 seconds to skip \x1b[1m\x1b[33m\x1b[40mstartup.nsh\x1b[0m\x1b[37m\x1b[40m or any other key to continue.\x1b[05;01HPress \x1b[1m\x1b[37m\x1b[40mESC\x1b[0m\x1b[37m\x1b[40m in 4 seconds to skip \x1b[1m\x1b[33m\x1b[40mstartup.nsh\x1b[0m\x1b[37m\x1b[40m or any other key to continue.\x1b[05;01HPress \x1b[1m\x1b[37m\x1b[40mESC\x1b[0m\x1b[37m\x1b[40m in 3 seconds to skip \x1b[1m\x1b[33m\x1b[40mstartup.nsh\x1b[0m\x1b[37m\x1b[40m or any other key to continue.\x1b[05;01HPress \x1b[1m\x1b[37m\x1b[40mESC\x1b[0m\x1b[37m\x1b[40m in 2 seconds to skip \x1b[1m\x1b[33m\x1b[40mstartup.nsh\x1b[0m\x1b[37m\x1b[40m or any other key to continue.\x1b[05;01HPress \x1b[1m\x1b[37m\x1b[40mESC\x1b[0m\x1b[37m\x1b[40m in 1 seconds to skip \x1b[1m\x1b[33m\x1b[40mstartup.nsh\x1b[0m\x1b[37m\x1b[40m or any other key to continue.\r',
].join('\n')

/** GRUB that cannot find its root file system (written after GRUB 2.06's messages). */
export const GRUB_NO_ROOT = [
  'BdsDxe: loading Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x2,0x0)\r',
  'BdsDxe: starting Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x2,0x0)\r',
  'error: no such device: 5b2c3d4e-0000-4000-8000-000000000001.\r',
  'error: unknown filesystem.\r',
  'Entering rescue mode...\r',
  'grub rescue> ',
].join('\n')

/** Debian's initramfs without a driver for the root disk's controller (written after initramfs-tools 0.142's scripts/local). */
export const INITRAMFS_NO_ROOT = [
  'SeaBIOS (version 1.16.2-debian-1.16.2-1)\r',
  'Booting from Hard Disk...\r',
  '[    0.000000] Linux version 6.1.0-28-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)\r',
  '[    1.901234] Run /init as init process\r',
  'Loading, please wait...\r',
  'Starting systemd-udevd version 252.31-1~deb12u1\r',
  'Begin: Loading essential drivers ... done.\r',
  'Begin: Running /scripts/init-premount ... done.\r',
  'Begin: Mounting root file system ... Begin: Running /scripts/local-top ... done.\r',
  'Begin: Running /scripts/local-premount ... done.\r',
  'Begin: Waiting for root file system ... Begin: Running /scripts/local-block ... done.\r',
  'done.\r',
  'Gave up waiting for root file system device.  Common problems:\r',
  ' - Boot args (cat /proc/cmdline)\r',
  '   - Check rootdelay= (did the system wait long enough?)\r',
  ' - Missing modules (cat /proc/modules; ls /dev)\r',
  'ALERT!  UUID=5b2c3d4e-0000-4000-8000-000000000001 does not exist.  Dropping to a shell!\r',
  '\r',
  '\r',
  'BusyBox v1.35.0 (Debian 1:1.35.0-4+b3) built-in shell (ash)\r',
  "Enter 'help' for a list of built-in commands.\r",
  '\r',
  '(initramfs) ',
].join('\n')

/** A kernel panic (written after Linux 6.1's message). */
export const KERNEL_PANIC = [
  '[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)\r',
  '[    2.612345] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\r',
  '[    2.612400] CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.0-28-amd64 #1  Debian 6.1.119-1\r',
  '[    2.613000] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0) ]---\r',
].join('\n')

/** A boot with no NIC driver: cloud-init lists only loopback (written after cloud-init 22.4.2's ci-info table). */
export const NO_NIC_BOOT = [
  '[    0.000000] Linux version 6.1.0-28-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)\r',
  '[   11.234567] systemd[1]: systemd 252.31-1~deb12u1 running in system mode (+PAM +AUDIT)\r',
  "[   30.123456] cloud-init[250]: Cloud-init v. 22.4.2 running 'init-local' at Mon, 25 Nov 2024 21:30:00 +0000. Up 30.12 seconds.\r",
  "[   45.012345] cloud-init[300]: Cloud-init v. 22.4.2 running 'init' at Mon, 25 Nov 2024 21:30:15 +0000. Up 45.01 seconds.\r",
  '[   45.112345] cloud-init[300]: ci-info: ++++++++++++++++++++++++++++Net device info+++++++++++++++++++++++++++++\r',
  '[   45.112400] cloud-init[300]: ci-info: +--------+------+-----------+-----------+-------+-------------------+\r',
  '[   45.112450] cloud-init[300]: ci-info: | Device |  Up  |  Address  |    Mask   | Scope |     Hw-Address    |\r',
  '[   45.112550] cloud-init[300]: ci-info: |   lo   | True | 127.0.0.1 | 255.0.0.0 |  host |         .         |\r',
  '[   45.112600] cloud-init[300]: ci-info: |   lo   | True |  ::1/128  |     .     |  host |         .         |\r',
].join('\n')

/** cloud-init that found no seed and fell back to DataSourceNone (written after cloud-init 22.4.2). */
export const NO_SEED_BOOT = [
  '[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)\r',
  '[   45.112345] cloud-init[300]: ci-info: ++++++++++++++++++++++++++++Net device info+++++++++++++++++++++++++++++\r',
  '[   45.112500] cloud-init[300]: ci-info: |  ens2  | True |         10.0.2.15          | 255.255.255.0 | global | 52:54:00:00:00:01 |\r',
  '[   90.000000] cloud-init[512]: Cloud-init v. 22.4.2 finished at Mon, 25 Nov 2024 21:31:00 +0000. Datasource DataSourceNone.  Up 90.00 seconds\r',
  '[   90.000100] cloud-init[512]: 2024-11-25 21:31:00,000 - cc_final_message.py[WARNING]: Used fallback datasource\r',
].join('\n')
