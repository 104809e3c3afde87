// Test fixtures: a small synthetic kernel on disk, made of real-format parts: ELF
// modules that depmod and modinfo read, a bzImage whose xz payload is a vmlinux
// with an export table, Debian's one-line stub System.map, modules.builtin(.modinfo).
// Used by tests only.

import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { run } from '../tools/run.js'
import { buildModuleElf, buildVmlinuxElf } from './elf.fixture.js'

/** One module of a fixture kernel. */
export interface FixtureModule {
  path: string
  name?: string
  exports?: string[]
  needs?: string[]
  aliases?: string[]
  firmware?: string[]
  /** Bytes of padding, to give the module a size. */
  pad?: number
}

/** The default fixture: libraries and drivers in the directories the policies look at. */
export const FIXTURE_MODULES: FixtureModule[] = [
  { path: 'kernel/drivers/scsi/scsi_mod.ko', exports: ['scsi_host_alloc'], needs: ['printk'], pad: 3000 },
  {
    path: 'kernel/drivers/ata/libata.ko',
    exports: ['ata_host_activate'],
    needs: ['printk', 'scsi_host_alloc'],
    pad: 5000,
  },
  {
    path: 'kernel/drivers/ata/ahci.ko',
    needs: ['ata_host_activate'],
    aliases: ['pci:v*d*sv*sd*bc01sc06i01*', 'pci:v00008086d00002922sv*sd*bc*sc*i*'],
    pad: 2000,
  },
  {
    path: 'kernel/drivers/ata/pata_acpi.ko',
    needs: ['ata_host_activate'],
    aliases: ['pci:v*d*sv*sd*bc01sc01i*'],
    pad: 500,
  },
  {
    path: 'kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko',
    needs: ['printk'],
    aliases: ['pci:v00008086d000010D3sv*sd*bc*sc*i*'],
    pad: 4000,
  },
  {
    path: 'kernel/drivers/net/ethernet/realtek/r8169.ko',
    needs: ['printk'],
    aliases: ['pci:v000010ECd00008168sv*sd*bc*sc*i*'],
    firmware: ['rtl_nic/rtl8168g-2.fw', 'rtl_nic/rtl8168h-2.fw'],
    pad: 3000,
  },
  {
    path: 'kernel/drivers/net/ethernet/realtek/8139too.ko',
    needs: ['printk'],
    aliases: ['pci:v000010ECd00008139sv*sd*bc*sc*i*'],
    pad: 1000,
  },
  {
    path: 'kernel/drivers/net/ethernet/sfc/sfc.ko',
    needs: ['printk'],
    aliases: ['pci:v00001924d00000803sv*sd*bc*sc*i*'],
    pad: 9000,
  },
  {
    path: 'kernel/drivers/net/wireless/intel/iwlwifi/iwlwifi.ko',
    needs: ['printk'],
    aliases: ['pci:v00008086d00002723sv*sd*bc*sc*i*'],
    firmware: ['iwlwifi-cc-a0-72.ucode'],
    pad: 8000,
  },
  {
    path: 'kernel/drivers/usb/host/xhci-pci.ko',
    needs: ['printk'],
    aliases: ['pci:v*d*sv*sd*bc0Csc03i30*'],
    pad: 1500,
  },
  {
    path: 'kernel/drivers/usb/storage/usb-storage.ko',
    needs: ['printk', 'scsi_host_alloc'],
    aliases: ['usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*'],
    pad: 1200,
  },
  {
    path: 'kernel/sound/pci/hda/snd-hda-intel.ko',
    needs: ['printk'],
    aliases: ['pci:v00008086d00001E20sv*sd*bc*sc*i*'],
    pad: 6000,
  },
  { path: 'kernel/fs/ext4/ext4.ko', exports: ['ext4_thing'], needs: ['printk'], aliases: ['fs-ext4'], pad: 7000 },
  { path: 'kernel/fs/ext4/ext4-extra.ko', name: 'ext4_extra', needs: ['ext4_thing'], pad: 100 },
]

/** A fixture kernel written to disk. */
export interface KernelFixture {
  /** The image root: boot/ and lib/modules/<version>/. */
  root: string
  version: string
  modulesDir: string
  cleanup(): Promise<void>
}

/** Writes a fixture kernel into a new temporary directory; runs depmod unless told not to. */
export async function makeKernelFixture(
  opts: { modules?: FixtureModule[]; kernelExports?: string[]; depmod?: boolean; version?: string } = {},
): Promise<KernelFixture> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'hwimage-kernel-fixture-'))
  const version = opts.version ?? '6.1.0-test-amd64'
  const modulesDir = path.join(root, 'lib', 'modules', version)
  const modules = opts.modules ?? FIXTURE_MODULES
  await fs.mkdir(path.join(root, 'boot'), { recursive: true })
  for (const m of modules) {
    const file = path.join(modulesDir, m.path)
    await fs.mkdir(path.dirname(file), { recursive: true })
    const name = m.name ?? path.basename(m.path, '.ko').replaceAll('-', '_')
    const elf = buildModuleElf({ name, exports: m.exports, needs: m.needs, aliases: m.aliases, firmware: m.firmware })
    const padded = new Uint8Array(elf.length + (m.pad ?? 0))
    padded.set(elf)
    await fs.writeFile(file, padded)
  }
  await fs.writeFile(path.join(modulesDir, 'modules.order'), modules.map((m) => m.path).join('\n') + '\n')
  await fs.writeFile(
    path.join(modulesDir, 'modules.builtin'),
    'kernel/drivers/usb/host/ehci-hcd.ko\nkernel/fs/nls/nls_base.ko\n',
  )
  await fs.writeFile(
    path.join(modulesDir, 'modules.builtin.modinfo'),
    'ehci_hcd.license=GPL\0ehci_hcd.alias=pci:v*d*sv*sd*bc0Csc03i20*\0nls_base.license=GPL\0',
  )
  await fs.writeFile(
    path.join(root, 'boot', `vmlinuz-${version}`),
    await buildBzImage(buildVmlinuxElf(opts.kernelExports ?? ['printk', 'kmalloc'], ['__kmalloc'])),
  )
  await fs.writeFile(
    path.join(root, 'boot', `System.map-${version}`),
    'ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n',
  )
  await fs.writeFile(
    path.join(root, 'boot', `config-${version}`),
    'CONFIG_FW_LOADER_COMPRESS=y\nCONFIG_FW_LOADER_COMPRESS_XZ=y\n',
  )
  if (opts.depmod !== false) await run(['depmod', '-b', root, version])
  return { root, version, modulesDir, cleanup: () => fs.rm(root, { recursive: true, force: true }) }
}

/** A bzImage (boot protocol 2.15) whose payload is `vmlinux` compressed with xz, plus the 4-byte size the build appends. */
export async function buildBzImage(vmlinux: Uint8Array): Promise<Uint8Array> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hwimage-bzimage-'))
  try {
    await fs.writeFile(path.join(dir, 'vmlinux'), vmlinux)
    await run(['xz', '--check=crc32', '-f', path.join(dir, 'vmlinux')])
    const xz = new Uint8Array(await fs.readFile(path.join(dir, 'vmlinux.xz')))
    const setupSects = 1
    const start = (setupSects + 1) * 512
    const out = new Uint8Array(start + xz.length + 4)
    const v = new DataView(out.buffer)
    out[0x1f1] = setupSects
    v.setUint32(0x202, 0x53726448, true)
    v.setUint16(0x206, 0x020f, true)
    v.setUint32(0x248, 0, true)
    v.setUint32(0x24c, xz.length + 4, true)
    out.set(xz, start)
    v.setUint32(start + xz.length, vmlinux.length, true)
    return out
  } finally {
    await fs.rm(dir, { recursive: true, force: true })
  }
}
