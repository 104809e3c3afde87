// The `server` kernel flavor's module policy: which parts of Debian's generic
// kernel a bare-metal server needs. Each rule says why. The set is derived from
// these rules (subsystems, and device drivers by the bus they attach to), then
// closed under modules.dep; it is not a hand-kept module list. Goals (issue 6):
// vmlinuz + /lib/modules/<version> ≤ 40 MiB with modules compressed, and ≥ 99%
// population-weighted coverage of each storage class and of Net/ethernet,
// relative to the generic kernel. Measured figures: docs/server-kernel.md.

import type { ModulePolicy } from './module-set.js'

/**
 * Modules the server set must hold whatever the other rules say: the devices QEMU
 * emulates in the lab (virtio, AHCI, NVMe, megasas, mptsas1068 (mptsas from
 * drivers/message/fusion), e1000, e1000e, rtl8139) and the basics of every image.
 */
export const LAB_MUST_HAVES: readonly string[] = [
  'virtio_pci', 'virtio_blk', 'virtio_scsi', 'virtio_net', 'virtio_console', 'virtio_rng', 'virtio_balloon',
  'ahci', 'nvme', 'megaraid_sas', 'mptsas', 'e1000', 'e1000e', '8139cp', '8139too',
  'ext4', 'vfat', 'nls_cp437', 'nls_iso8859_1', 'nls_utf8', 'efivarfs',
  'dm_mod', 'dm_crypt', 'md_mod', 'raid1', 'raid456', 'bonding', '8021q', 'bridge',
  'nf_tables', 'nf_conntrack', 'nft_chain_nat', 'iptable_filter', 'ip6table_filter',
  'xhci_pci', 'ehci_pci', 'usbhid', 'hid_generic', 'usb_storage', 'uas',
  'ipmi_si', 'ipmi_devintf', 'coretemp', 'k10temp', 'sd_mod', 'sr_mod', 'sg',
  'aesni_intel', 'crc32c_intel',
]

/** The `server` flavor's module policy. */
export const SERVER_POLICY: ModulePolicy = {
  name: 'server',
  rules: [
    { kind: 'modules', names: LAB_MUST_HAVES, why: 'the emulated hardware of the lab (DESIGN.md) and what every image needs: named so a kernel lacking one is reported' },
    // --- storage ---------------------------------------------------------------
    { kind: 'subsystem', under: 'drivers/ata', why: 'SATA and PATA controllers: AHCI on every board, legacy IDE modes, libata' },
    { kind: 'subsystem', under: 'drivers/nvme', why: 'NVMe disks, and NVMe over fabrics (TCP, RDMA, FC) for diskless and SAN boot' },
    { kind: 'drivers', bus: 'pci', under: 'drivers/scsi', why: 'SCSI, SAS, RAID and Fibre Channel host adapters (megaraid_sas, mpt3sas, hpsa, smartpqi, aacraid, lpfc, qla2xxx …)' },
    { kind: 'drivers', bus: 'pci', under: 'drivers/message', why: 'LSI Fusion-MPT SAS/SPI (mptsas: QEMU mptsas1068, older LSI HBAs)' },
    { kind: 'drivers', bus: 'pci', under: 'drivers/block', why: 'PCI block devices (mtip32xx, skd, rsxx)' },
    { kind: 'subsystem', under: 'drivers/scsi/device_handler', why: 'multipath device handlers (ALUA, EMC, RDAC) for SAN storage' },
    {
      kind: 'modules',
      names: ['sd_mod', 'sr_mod', 'sg', 'st', 'ses', 'enclosure', 'scsi_transport_*', 'raid_class', 'iscsi_tcp', 'libiscsi*', 'iscsi_ibft', 'iscsi_boot_sysfs', 'uas'],
      why: 'SCSI disks, CD-ROMs (virtual media), generic access (smartctl), tape, enclosures; iSCSI boot (iBFT)',
    },
    { kind: 'modules', names: ['virtio_*', 'virtio_blk', 'virtio_scsi', 'vmd', 'nvme*'], why: 'virtio devices (the lab, VMs), Intel VMD (NVMe behind Volume Management Device)' },
    { kind: 'modules', names: ['loop', 'nbd', 'zram', 'dax_pmem', 'nd_*', 'nfit', 'dax_hmem', 'device_dax', 'kmem'], why: 'loop, network block devices, compressed swap, persistent memory (NVDIMM)' },
    { kind: 'drivers', bus: 'pci', under: 'drivers/ufs', why: 'UFS flash controllers (Storage/other in the population table)' },
    { kind: 'drivers', bus: 'pci', under: 'drivers/mmc/host', why: 'SD/eMMC controllers: SD boot modules on some servers' },
    { kind: 'modules', names: ['mmc_block', 'tifm_7xx1', 'tifm_sd', 'tifm_ms', 'rtsx_pci', 'rtsx_pci_sdmmc'], why: 'SD cards, and the TI/Realtek flash-media readers that make up most of Storage/other' },
    { kind: 'subsystem', under: 'drivers/md', why: 'software RAID (md), device-mapper (LVM, dm-crypt, multipath, thin), bcache' },
    // --- network ---------------------------------------------------------------
    { kind: 'drivers', bus: 'pci', under: 'drivers/net/ethernet', why: 'PCI Ethernet controllers, every vendor: the NIC of an unknown server is the first thing that must work' },
    { kind: 'subsystem', under: 'drivers/net/phy', why: 'PHY drivers that NIC drivers bind through mdio (r8169 needs realtek, many need marvell/broadcom)' },
    { kind: 'subsystem', under: 'drivers/net/mdio', why: 'MDIO bus helpers used by NIC drivers' },
    { kind: 'subsystem', under: 'drivers/net/bonding', why: 'link aggregation (LACP) on server uplinks' },
    { kind: 'subsystem', under: 'drivers/net/team', why: 'teaming, the userspace-driven alternative to bonding' },
    {
      kind: 'modules',
      names: ['8021q', 'bridge', 'br_netfilter', 'macvlan', 'macvtap', 'ipvlan', 'vxlan', 'geneve', 'veth', 'tun', 'tap', 'dummy', 'ifb', 'vrf', 'wireguard', 'vmxnet3', 'net_failover', 'failover', 'mii', 'cdc_ether', 'rndis_host', 'cdc_ncm', 'openvswitch', 'nsh', 'ip_gre', 'ip6_gre', 'ipip', 'sit', 'ip6_tunnel', 'udp_tunnel', 'ip6_udp_tunnel', 'xfrm_user', 'xfrm_interface', 'esp4', 'esp6', 'tls', 'af_packet_diag', 'unix_diag', 'inet_diag', 'tcp_diag', 'udp_diag', 'sctp', 'llc', 'stp', 'garp', 'mrp', 'vhost*', 'vsock*', 'vmw_vsock_virtio_transport*'],
      why: 'VLANs, bridges, overlays and tunnels for hypervisors and containers; BMC USB NICs (cdc_ether, rndis); vsock for VMs',
    },
    { kind: 'subsystem', under: 'net/netfilter', why: 'firewalls, NAT and conntrack for hosts and containers (nftables and iptables back ends)' },
    { kind: 'subsystem', under: 'net/ipv4/netfilter', why: 'IPv4 netfilter tables and NAT' },
    { kind: 'subsystem', under: 'net/ipv6/netfilter', why: 'IPv6 netfilter tables and NAT' },
    { kind: 'subsystem', under: 'net/bridge/netfilter', why: 'filtering on bridges (ebtables, br_netfilter users)' },
    { kind: 'subsystem', under: 'net/sched', why: 'traffic control: qdiscs, classifiers, actions (fq_codel, mqprio, tc flower offload)' },
    { kind: 'drivers', bus: 'pci', under: 'drivers/infiniband', why: 'InfiniBand / RoCE adapters: cheap next to the Ethernet drivers they share code with (mlx5)' },
    { kind: 'subsystem', under: 'drivers/infiniband/core', why: 'the RDMA core, needed by any RDMA adapter' },
    { kind: 'subsystem', under: 'drivers/infiniband/ulp', why: 'IPoIB, SRP, iSER, RTRS: storage and IP over RDMA' },
    { kind: 'modules', names: ['rdma_rxe', 'rpcrdma', 'nvme_rdma'], why: 'soft RoCE and iWARP, NFS and NVMe over RDMA' },
    // --- USB, input, console ------------------------------------------------------
    { kind: 'drivers', bus: 'pci', under: 'drivers/usb/host', why: 'USB host controllers (xHCI, EHCI, OHCI, UHCI): keyboards, virtual media, install sticks' },
    { kind: 'subsystem', under: 'drivers/usb/storage', why: 'USB mass storage and UAS: install media, BMC virtual media' },
    { kind: 'modules', names: ['usbhid', 'hid_generic', 'hid', 'evdev', 'cdc_acm', 'pl2303', 'ftdi_sio', 'usbserial'], why: 'keyboards and mice on the console and BMC KVM; USB serial consoles' },
    { kind: 'modules', names: ['ast', 'mgag200'], why: 'the VGA of ASPEED and Matrox BMCs: a usable remote console at native resolution' },
    // --- platform: management, sensors, memory errors ------------------------------
    { kind: 'subsystem', under: 'drivers/char/ipmi', why: 'IPMI: talk to the BMC (ipmitool, watchdog, sensors)' },
    { kind: 'modules', names: ['acpi_ipmi', 'acpi_power_meter', 'acpi_pad', 'coretemp', 'k10temp', 'fam15h_power', 'nct6775', 'nct6775_core', 'it87', 'w83627ehf', 'w83795', 'jc42', 'ipmi_*', 'ibmaem', 'ibmpex', 'i5k_amb', 'i5500_temp', 'via_cputemp', 'lm75', 'lm90', 'ee1004', 'intel_pch_thermal', 'intel_rapl_*', 'intel_powerclamp', 'x86_pkg_temp_thermal', 'intel_uncore_frequency*', 'isst_if_*', 'amd64_edac'],
      why: 'temperatures, fans, power meters, DIMM SPD; CPU power and thermal controls' },
    { kind: 'drivers', bus: 'pci', under: 'drivers/hwmon', why: 'sensors found by PCI id (k10temp, fam15h_power, i5k_amb)' },
    { kind: 'drivers', bus: 'acpi', under: 'drivers/hwmon', why: 'sensors ACPI describes (acpi_power_meter, asus_atk0110)' },
    { kind: 'subsystem', under: 'drivers/edac', why: 'memory error reporting (ECC) for every server chipset' },
    { kind: 'drivers', bus: 'pci', under: 'drivers/i2c/busses', why: 'SMBus controllers (i801, piix4) that sensors and DIMM SPD hang off' },
    { kind: 'drivers', bus: 'pci', under: 'drivers/watchdog', why: 'hardware watchdogs (iTCO via lpc_ich, sp5100_tco)' },
    { kind: 'modules', names: ['iTCO_wdt', 'iTCO_vendor_support', 'lpc_ich', 'softdog', 'wdat_wdt'], why: 'chipset and ACPI watchdogs' },
    { kind: 'modules', names: ['ioatdma', 'dca', 'idxd', 'intel_qat', 'qat_*', 'ccp', 'kvm', 'kvm_intel', 'kvm_amd', 'irqbypass', 'vfio*', 'mdev', 'tpm_*', 'efi_pstore', 'msr', 'cpuid', 'efivarfs', 'intel_pmc_core', 'pcspkr'],
      why: 'DMA engines and crypto offload, KVM and device passthrough (VFIO), TPM, EFI variables, msr/cpuid' },
    // --- filesystems --------------------------------------------------------------
    { kind: 'subsystem', under: 'fs/ext4', why: 'the root filesystem of the image' },
    { kind: 'subsystem', under: 'fs/xfs', why: 'the common data filesystem on servers' },
    { kind: 'subsystem', under: 'fs/btrfs', why: 'snapshots and checksums; some images use it for root' },
    { kind: 'subsystem', under: 'fs/fat', why: 'the EFI System Partition and the CIDATA seed volume (vfat)' },
    { kind: 'modules', names: ['nls_utf8', 'nls_cp437', 'nls_ascii', 'nls_iso8859_1', 'nls_iso8859_15'], why: 'code pages vfat mounts ask for (cp437, iso8859-1 by default; utf8)' },
    { kind: 'subsystem', under: 'fs/isofs', why: 'ISO 9660: install media, BMC virtual CD, config drives' },
    { kind: 'subsystem', under: 'fs/udf', why: 'UDF: DVD-format install media and some BMC virtual media images' },
    { kind: 'subsystem', under: 'fs/squashfs', why: 'live and rescue images, snaps' },
    { kind: 'subsystem', under: 'fs/overlayfs', why: 'containers (overlay2) and read-only roots' },
    { kind: 'subsystem', under: 'fs/fuse', why: 'FUSE filesystems, virtiofs' },
    { kind: 'subsystem', under: 'fs/nfs', why: 'NFS client (home directories, NFS root)' },
    { kind: 'subsystem', under: 'fs/nfsd', why: 'the kernel NFS server: file servers and diskless-boot hosts' },
    { kind: 'subsystem', under: 'fs/lockd', why: 'NFS locking' },
    { kind: 'subsystem', under: 'net/sunrpc', why: 'RPC for NFS' },
    { kind: 'modules', names: ['efivarfs', 'autofs4', 'configfs', 'quota_v2', 'quota_tree', 'binfmt_misc', 'cifs', 'erofs', 'nilfs2', 'jfs', 'msdos', 'exfat', 'hfsplus', 'ufs', 'cachefiles', 'netfs', 'fscache'],
      why: 'EFI variables, automount, configfs, quotas; the SMB client; filesystems of disks a rescue boot may meet' },
    // --- crypto and libraries ---------------------------------------------------------
    { kind: 'subsystem', under: 'crypto', why: 'every algorithm dm-crypt, IPsec, WireGuard, kTLS or a filesystem may request by name' },
    { kind: 'subsystem', under: 'arch/x86/crypto', why: 'AES-NI, CRC32C, SHA and ChaCha accelerations: the fast versions of the above' },
    { kind: 'subsystem', under: 'lib', why: 'CRCs, compression and RAID6 libraries that modules and request_module users need' },
    { kind: 'subsystem', under: 'arch/x86/events', why: 'CPU performance counters (perf, RAPL energy)' },
    // --- never, even inside a selected directory -----------------------------------
    { kind: 'exclude', names: ['test_*', '*_test', 'tcrypt', '*kunit*'], why: 'self-tests (lib/test_bpf alone is 4.6 MiB): they only run when loaded by hand' },
    { kind: 'exclude', names: ['ib_srpt', 'isert'], why: 'SCSI targets over RDMA: a storage-array role, and they drag in the 1.7 MiB LIO target core' },
    { kind: 'exclude', names: ['hfi1'], why: 'Intel Omni-Path (2.4 MiB alone): an HPC fabric, not "InfiniBand where cheap"; add it in the spec where needed' },
  ],
}
