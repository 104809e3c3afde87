// The TFTP root serve keeps in step with each machine's state, for firmware that boots
// by TFTP (UEFI with Secure Boot: shim → Debian's signed grubnetx64, which has no http):
//
//   shimx64.efi                  shim-signed's /usr/lib/shim/shimx64.efi.signed (the bootfile)
//   grubx64.efi                  grub-efi-amd64-signed's grubnetx64.efi.signed (shim loads it from beside itself)
//   grub/grub.cfg                the fallback (boot-answers.ts grubFallbackConfig)
//   grub/grub.cfg-52-54-00-…     one per machine: the deploy environment with a token, or exit
//   deploy/vmlinuz, deploy/initrd  the deploy environment
//   boot.ipxe                    for iPXE: chains to serve's per-MAC HTTP script
//
// Debian's grubnetx64 has its prefix at (tftp)/grub (DESIGN.md: also read as
// grub/x86_64-efi/grub.cfg). Files are written to a temporary name and renamed, so a TFTP
// read never sees half a file. Per-MAC configs hold the machine's token: TFTP has no
// authentication, so anyone on the boot network can read it (docs/deploy.md, Security);
// the tokens die with the deploy (redeploy revokes them).

import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { HwimageError } from '../errors.js'
import { HOST_FILES } from '../tools/programs.js'
import {
  grubConfig,
  grubFallbackConfig,
  ipxeChainScript,
  TFTP_INITRD,
  TFTP_KERNEL,
  type DeployBoot,
} from './boot-answers.js'
import { macWithDashes } from './mac.js'
import { bootsDeployEnvironment } from './machine-states.js'
import type { MachineStore } from './state/store.js'

/** Where the signed boot files come from. */
export const SHIM_SOURCE = '/usr/lib/shim/shimx64.efi.signed' satisfies keyof typeof HOST_FILES
export const GRUB_NET_SOURCE = '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed' satisfies keyof typeof HOST_FILES

/** What the tree is made from. */
export interface TftpTreeOptions {
  root: string
  publicUrl: string
  kernelArgs?: string
  /** The deploy environment's directory (vmlinuz, initrd), when built. */
  deployDir?: string
  shim?: string
  grub?: string
  /** unknown_macs: enlist — the fallback GRUB config boots the deploy environment to enlist. */
  enlist?: boolean
}

/** The per-MAC GRUB config's path relative to the root (GRUB manual, "Network": grub.cfg-<MAC with dashes>). */
export function grubConfigName(mac: string): string {
  return `grub/grub.cfg-${macWithDashes(mac)}`
}

/** Writes the shared files: shim, GRUB, the fallback config, boot.ipxe, the deploy environment. */
export async function writeTftpBase(o: TftpTreeOptions): Promise<void> {
  await fsp.mkdir(path.join(o.root, 'grub'), { recursive: true })
  await fsp.mkdir(path.join(o.root, 'deploy'), { recursive: true })
  await copyIfChanged(o.shim ?? SHIM_SOURCE, path.join(o.root, 'shimx64.efi'))
  await copyIfChanged(o.grub ?? GRUB_NET_SOURCE, path.join(o.root, 'grubx64.efi'))
  await writeAtomic(
    path.join(o.root, 'grub', 'grub.cfg'),
    grubFallbackConfig(o.enlist ? { publicUrl: o.publicUrl, kernelArgs: o.kernelArgs } : undefined),
    0o644,
  )
  await writeAtomic(path.join(o.root, 'boot.ipxe'), ipxeChainScript(o.publicUrl), 0o644)
  if (o.deployDir) {
    for (const [from, to] of [
      ['vmlinuz', TFTP_KERNEL],
      ['initrd', TFTP_INITRD],
    ] as const) {
      const src = path.join(o.deployDir, from)
      if (await exists(src)) await copyIfChanged(src, path.join(o.root, to))
    }
  }
}

/**
 * Brings one machine's GRUB config in step with its state: a deploy config while it must
 * deploy (kept as it is when its token is still valid, so a machine between TFTP reads
 * keeps the same token), "exit" once installed, nothing for a machine serve does not know.
 */
export async function syncMachineGrubConfig(
  store: MachineStore,
  o: TftpTreeOptions,
  mac: string,
): Promise<'deploy' | 'local' | 'removed' | 'kept'> {
  const file = path.join(o.root, grubConfigName(mac))
  const machine = store.get(mac)
  if (!machine) {
    await fsp.rm(file, { force: true })
    return 'removed'
  }
  if (!bootsDeployEnvironment(machine.state)) {
    await writeAtomic(file, grubConfig({ action: 'local', mac }), 0o644)
    return 'local'
  }
  const old = await fsp.readFile(file, 'utf8').catch(() => '')
  const current = /\bhwimage\.token=(\S+)/.exec(old)?.[1]
  // Kept only when it is exactly what would be written with that token (same URL, same kernel arguments).
  if (
    current &&
    store.checkToken(mac, current) === 'ok' &&
    old ===
      grubConfig({ action: 'deploy', boot: { publicUrl: o.publicUrl, mac, token: current, kernelArgs: o.kernelArgs } })
  )
    return 'kept'
  const boot: DeployBoot = {
    publicUrl: o.publicUrl,
    mac,
    token: store.issueToken(mac, 'tftp'),
    kernelArgs: o.kernelArgs,
  }
  await writeAtomic(file, grubConfig({ action: 'deploy', boot }), 0o644)
  return 'deploy'
}

/** The base files and every machine's config. */
export async function syncTftpTree(store: MachineStore, o: TftpTreeOptions): Promise<void> {
  await writeTftpBase(o)
  for (const m of store.list()) await syncMachineGrubConfig(store, o, m.mac)
}

async function copyIfChanged(from: string, to: string): Promise<void> {
  let data: Buffer
  try {
    data = await fsp.readFile(from)
  } catch (e) {
    const pkg = (HOST_FILES as Record<string, string>)[from]
    throw new HwimageError(
      'TOOL_MISSING',
      `Cannot set up the TFTP tree: cannot read "${from}" (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      {
        hint: pkg ? `apt-get install ${pkg}` : 'build the deploy environment first (hwimage build-deploy)',
        cause: e,
      },
    )
  }
  const old = await fsp.readFile(to).catch(() => undefined)
  if (old && digest(old) === digest(data)) return
  await writeAtomic(to, data, 0o644)
}

async function writeAtomic(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`
  await fsp.writeFile(tmp, data, { mode })
  await fsp.chmod(tmp, mode)
  await fsp.rename(tmp, file)
}

async function exists(p: string): Promise<boolean> {
  return fsp.stat(p).then(
    () => true,
    () => false,
  )
}

function digest(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex')
}
