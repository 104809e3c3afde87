// What serve tells a machine's firmware, as text: an iPXE script (SeaBIOS and iPXE ROMs
// fetch it over HTTP), a GRUB config (Debian's signed grubnetx64 reads it over TFTP on
// the Secure Boot path; it has no http module, so the kernel and initrd come by TFTP
// too), and a dnsmasq configuration for a network whose DHCP server is someone else's.
// Pure: no file system, no network.

/** The deploy environment's kernel command line: where serve is, who the machine is, its token. */
export interface DeployBoot {
  /** serve's base URL as the machine reaches it. */
  publicUrl: string
  mac: string
  token: string
  /** Extra kernel arguments from the config (console=…). */
  kernelArgs?: string
}

/** The kernel command line the deploy environment reads its orders from (/proc/cmdline). */
export function deployCommandLine(b: DeployBoot): string {
  const args = [`hwimage.url=${b.publicUrl}`, `hwimage.mac=${b.mac}`, `hwimage.token=${b.token}`]
  if (b.kernelArgs?.trim()) args.push(b.kernelArgs.trim())
  return args.join(' ')
}

/**
 * The iPXE script: boot the deploy environment over HTTP, or `exit` so that the BIOS
 * goes on to the next boot device (the disk follows the network in the boot order).
 * iPXE scripts start with "#!ipxe"; `kernel`, `initrd`, `boot` and `exit` are its commands
 * (https://ipxe.org/scripting, https://ipxe.org/cmd/exit).
 */
export function ipxeScript(answer: { action: 'deploy'; boot: DeployBoot } | { action: 'local'; mac: string }): string {
  if (answer.action === 'local') {
    return ['#!ipxe', `echo hwimage: ${answer.mac} is installed, booting from the local disk`, 'exit', ''].join('\n')
  }
  const b = answer.boot
  return [
    '#!ipxe',
    `echo hwimage: ${b.mac} boots the deploy environment`,
    // initrd=initrd names the initrd for the kernel's EFI stub when iPXE runs under UEFI.
    `kernel ${b.publicUrl}/deploy/vmlinuz initrd=initrd ${deployCommandLine(b)}`,
    `initrd --name initrd ${b.publicUrl}/deploy/initrd`,
    'boot',
    '',
  ].join('\n')
}

/** The TFTP paths of the deploy environment's kernel and initrd (relative to the TFTP root). */
export const TFTP_KERNEL = 'deploy/vmlinuz'
export const TFTP_INITRD = 'deploy/initrd'

/**
 * A GRUB config for one MAC: boot the deploy environment from TFTP, or `exit` back to the
 * firmware, which goes on to the next boot entry (the deploy environment set BootNext to
 * the installed disk, so this is only reached when that entry is missing).
 */
export function grubConfig(answer: { action: 'deploy'; boot: DeployBoot } | { action: 'local'; mac: string }): string {
  if (answer.action === 'local') {
    return [
      '# hwimage serve: installed, boot from the local disk',
      `echo "hwimage: ${answer.mac} is installed, booting from the local disk"`,
      'exit',
      '',
    ].join('\n')
  }
  const b = answer.boot
  return [
    "# hwimage serve: the deploy environment (this file holds the machine's token for this deploy)",
    'set timeout=0',
    `echo "hwimage: ${b.mac} boots the deploy environment"`,
    `linux (tftp)/${TFTP_KERNEL} ${deployCommandLine(b)}`,
    `initrd (tftp)/${TFTP_INITRD}`,
    'boot',
    '',
  ].join('\n')
}

/**
 * grub/grub.cfg, read when GRUB found no grub.cfg-MAC of its own. GRUB 2.06 searches its
 * prefix for grub.cfg-<UUID>, grub.cfg-<MAC with dashes>, grub.cfg-<IP in hex, shortened>
 * and then grub.cfg (GRUB manual, "Network"; commit "normal/main: Search for specific config
 * files for netboot", 2020). This fallback sources the per-MAC file by name from the boot
 * NIC's address (${net_default_mac}, set by the net module) for builds where that search
 * is off (feature_net_search_cfg=n). Then, for a MAC serve does not know: with enlisting,
 * the deploy environment without a token (hwimage.enlist=1: it asks POST /api/v1/enlist for
 * one); without, exit to the firmware.
 */
export function grubFallbackConfig(enlist?: { publicUrl: string; kernelArgs?: string }): string {
  const lines = [
    '# hwimage serve: per-machine configs are grub.cfg-<mac-with-dashes> beside this file',
    'if [ -n "${net_default_mac}" ]; then',
    '  regexp --set=1:m1 --set=2:m2 --set=3:m3 --set=4:m4 --set=5:m5 --set=6:m6 \'^(..):(..):(..):(..):(..):(..)$\' "${net_default_mac}"',
    '  source "${prefix}/grub.cfg-${m1}-${m2}-${m3}-${m4}-${m5}-${m6}"',
    'fi',
  ]
  if (enlist) {
    const args = [
      `hwimage.url=${enlist.publicUrl}`,
      'hwimage.mac=${net_default_mac}',
      'hwimage.enlist=1',
      ...(enlist.kernelArgs?.trim() ? [enlist.kernelArgs.trim()] : []),
    ]
    lines.push(
      'echo "hwimage: ${net_default_mac} is unknown, enlisting"',
      `linux (tftp)/${TFTP_KERNEL} ${args.join(' ')}`,
      `initrd (tftp)/${TFTP_INITRD}`,
      'boot',
    )
  } else {
    lines.push('echo "hwimage: no deploy configured for ${net_default_mac}, booting the next device"', 'exit')
  }
  return lines.join('\n') + '\n'
}

/** What a dnsmasq proxy-DHCP + TFTP configuration needs to know. */
export interface DnsmasqOptions {
  /** The network dnsmasq answers on, as dnsmasq's proxy dhcp-range takes it: "192.168.1.0". */
  subnet: string
  /** The interface to listen on, e.g. "eno1" (all when omitted). */
  interface?: string
  /** The TFTP root serve keeps in step (tftp-tree.ts). */
  tftpRoot: string
}

/**
 * dnsmasq as a proxy DHCP server (it adds boot options to the offers of the network's own
 * DHCP server, which keeps handing out addresses) and a TFTP server (dnsmasq(8):
 * --dhcp-range=<net>,proxy, --pxe-service, --dhcp-userclass, --enable-tftp, --tftp-root).
 * UEFI x86-64 (client architecture 7 and 9, RFC 4578 §2.1) gets shim, which loads grubx64.efi
 * beside it; iPXE (user class "iPXE") gets boot.ipxe, which chains to serve's script over HTTP;
 * a BIOS PXE ROM that is not iPXE is chained to iPXE (undionly.kpxe from Debian's ipxe package,
 * to be copied into the TFTP root). Run on a bridged network with another DHCP server and
 * iPXE in tests/deploy/real-network.test.ts. No `tftp-secure`: dnsmasq started as root drops to
 * its own user, and tftp-secure then refuses every file that user does not own ("cannot
 * access …: Permission denied") — serve writes the tree world-readable instead (it holds boot
 * files and per-machine configs, which TFTP serves to anyone on the network who names them).
 */
export function dnsmasqConfig(o: DnsmasqOptions): string {
  return [
    '# Written by hwimage serve: proxy DHCP + TFTP for network boot; the addresses come from',
    "# the network's own DHCP server.",
    "# UEFI: Debian's GRUB takes its TFTP server from the DHCP server's answer, not from this",
    "# proxy: set the network DHCP server's next-server to this host (docs/deploy.md).",
    'port=0',
    ...(o.interface ? [`interface=${o.interface}`, 'bind-interfaces'] : []),
    `dhcp-range=${o.subnet},proxy`,
    'log-dhcp',
    'enable-tftp',
    `tftp-root=${o.tftpRoot}`,
    'dhcp-userclass=set:ipxe,iPXE',
    // iPXE asks again with user class "iPXE": boot.ipxe (TFTP) chains to serve's script with its MAC.
    'pxe-service=tag:ipxe,x86PC,"hwimage serve (iPXE)",boot.ipxe',
    'pxe-service=tag:!ipxe,x86PC,"hwimage serve (BIOS, chain to iPXE)",undionly.kpxe',
    'pxe-service=X86-64_EFI,"hwimage serve (UEFI, shim)",shimx64.efi',
    'pxe-service=BC_EFI,"hwimage serve (UEFI, shim)",shimx64.efi',
    '',
  ].join('\n')
}

/** boot.ipxe in the TFTP root: chains to serve's per-MAC script (iPXE expands ${net0/mac}). */
export function ipxeChainScript(publicUrl: string): string {
  return ['#!ipxe', `chain ${publicUrl}/boot/ipxe?mac=\${net0/mac} || exit`, ''].join('\n')
}
