// Serial console excerpts for the lab's tests. Each says where it comes from: a real
// boot on this project's QEMU (trimmed, with the lines that matter kept verbatim), or
// written after Debian's messages where no real log of that failure exists yet.

/** A good first boot under OVMF with Secure Boot (written after a Debian 12 cloud image's console). */
export const GOOD_UEFI_SB_BOOT = [
  '\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01HBdsDxe: loading Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x2,0x0)\r',
  'BdsDxe: starting Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x2,0x0)\r',
  'Welcome to GRUB!\r',
  '',
  "  Booting `Debian GNU/Linux'\r",
  '',
  'Loading Linux 6.1.0-28-amd64 ...\r',
  'Loading initial ramdisk ...\r',
  '[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)\r',
  '[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz-6.1.0-28-amd64 root=UUID=5b2c3d4e-0000-4000-8000-000000000001 ro console=tty0 console=ttyS0,115200n8\r',
  '[    0.000000] secureboot: Secure boot enabled\r',
  '[    0.000000] Kernel is locked down from EFI Secure Boot mode; see man kernel_lockdown.7\r',
  '[    2.301234] Run /init as init process\r',
  'Loading, please wait...\r',
  'Starting systemd-udevd version 252.31-1~deb12u1\r',
  '[    9.123456] EXT4-fs (vda1): mounted filesystem with ordered data mode. Quota mode: none.\r',
  '[   11.234567] systemd[1]: systemd 252.31-1~deb12u1 running in system mode (+PAM +AUDIT +SELINUX +APPARMOR +IMA +SMACK +SECCOMP +GCRYPT -GNUTLS +OPENSSL +ACL +BLKID +CURL +ELFUTILS +FIDO2 +IDN2 -IDN +IPTC +KMOD +LIBCRYPTSETUP +LIBFDISK +PCRE2 -PWQUALITY +P11KIT +QRENCODE +TPM2 +BZIP2 +LZ4 +XZ +ZLIB +ZSTD -BPF_FRAMEWORK -XKBCOMMON +UTMP +SYSVINIT default-hierarchy=unified)\r',
  '\x1b[0;1;39mWelcome to \x1b[0m\x1b[1;31mDebian GNU/Linux 12 (bookworm)\x1b[0m!\r',
  "[   30.123456] cloud-init[250]: Cloud-init v. 22.4.2 running 'init-local' at Mon, 25 Nov 2024 21:30:00 +0000. Up 30.12 seconds.\r",
  "[   45.012345] cloud-init[300]: Cloud-init v. 22.4.2 running 'init' at Mon, 25 Nov 2024 21:30:15 +0000. Up 45.01 seconds.\r",
  '[   45.112345] cloud-init[300]: ci-info: ++++++++++++++++++++++++++++++++++++++Net device info+++++++++++++++++++++++++++++++++++++++\r',
  '[   45.112400] cloud-init[300]: ci-info: +--------+------+----------------------------+---------------+--------+-------------------+\r',
  '[   45.112450] cloud-init[300]: ci-info: | Device |  Up  |          Address           |      Mask     | Scope  |     Hw-Address    |\r',
  '[   45.112500] cloud-init[300]: ci-info: |  ens2  | True |         10.0.2.15          | 255.255.255.0 | global | 52:54:00:00:00:01 |\r',
  '[   45.112550] cloud-init[300]: ci-info: |   lo   | True |         127.0.0.1          |   255.0.0.0   |  host  |         .         |\r',
  'HWIMAGE-READY hwimage-demo\r',
  'HWIMAGE-DF Filesystem        1B-blocks      Used   Available Use% Mounted on\r',
  'HWIMAGE-DF /dev/vda1       21003583488 912478208 19128987648   5% /\r',
  '[   95.051234] cloud-init[512]: Cloud-init v. 22.4.2 finished at Mon, 25 Nov 2024 21:31:00 +0000. Datasource DataSourceNoCloud [seed=/dev/vdb][dsmode=net].  Up 95.05 seconds\r',
  '\r',
  'Debian GNU/Linux 12 hwimage-demo ttyS0\r',
  '\r',
  'hwimage-demo login: ',
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
