// Which network renderer the image's cloud-init will pick, read from the image's root
// filesystem with debugfs (e2fsprogs) at a byte offset — no loop device, no mount.
//
// It mirrors cloud-init 22.4's cloudinit/net/renderers.py: the first available
// renderer in `system_info.network.renderers` (cloud.cfg, then cloud.cfg.d/*.cfg in
// order, later files winning), or in DEFAULT_PRIORITY. Available means: eni —
// ifquery, ifup and ifdown in /sbin or /usr/sbin and /etc/network/interfaces;
// netplan — netplan in /usr/sbin or /sbin; network-manager — nmcli and
// /etc/NetworkManager/NetworkManager.conf; networkd — ip and systemctl.
//
// Version 2 goes to netplan images only: cloud-init hands it to netplan almost as
// written. Every other renderer gets version 1, which cloud-init converts itself.
// Note that cloud-init 22.4's networkd renderer writes only .network files for
// physical NICs: it creates no bonds and no VLANs (there is no .netdev support).

import { parse as parseYaml } from 'yaml'
import { HwimageError } from '../errors.js'
import { run } from '../tools/run.js'

/** The renderers cloud-init may pick on a Debian image. */
export type NetworkRenderer = 'eni' | 'netplan' | 'network-manager' | 'networkd' | 'sysconfig'

/** The outcome: the renderer (if known), the network config version to write, and why. */
export interface NetworkRendererDetection {
  renderer: NetworkRenderer | 'unknown'
  networkVersion: 1 | 2
  reason: string
}

/** cloud-init 22.4's renderers.DEFAULT_PRIORITY (the BSD ones cannot apply here). */
export const DEFAULT_RENDERER_PRIORITY: readonly string[] = [
  'eni',
  'sysconfig',
  'netplan',
  'network-manager',
  'networkd',
]

/** What was found in the image, for the pure decision. */
export interface ImageNetworkFacts {
  /** Absolute paths of regular files and symlinks found. */
  files: ReadonlySet<string>
  /** Contents of /etc/cloud/cloud.cfg then cloud.cfg.d/*.cfg in lexical order. */
  cloudConfigs: readonly string[]
}

/** argv of debugfs running one request on the filesystem at `offset` bytes into `image`. */
export function debugfsArgv(image: string, offset: bigint, request: string): string[] {
  return ['debugfs', '-R', request, `${image}?offset=${offset}`]
}

/** argv of sfdisk printing an image's partition table as JSON. */
export function sfdiskJsonArgv(image: string): string[] {
  return ['sfdisk', '--json', image]
}

/** Decides the renderer from facts about the image (pure). */
export function decideNetworkRenderer(facts: ImageNetworkFacts): NetworkRendererDetection {
  let priority: readonly string[] = DEFAULT_RENDERER_PRIORITY
  let from = 'cloud-init default priority'
  for (const text of facts.cloudConfigs) {
    let cfg: unknown
    try {
      cfg = parseYaml(text, { version: '1.1' })
    } catch {
      continue // cloud-init would log and skip it too
    }
    const r = (cfg as { system_info?: { network?: { renderers?: unknown } } } | null)?.system_info?.network?.renderers
    if (Array.isArray(r) && r.every((x) => typeof x === 'string'))
      [priority, from] = [r, 'system_info.network.renderers']
  }
  const has = (...paths: string[]) => paths.some((p) => facts.files.has(p))
  const inSbin = (name: string) => has(`/sbin/${name}`, `/usr/sbin/${name}`)
  const available: Record<string, () => boolean> = {
    eni: () => ['ifquery', 'ifup', 'ifdown'].every(inSbin) && has('/etc/network/interfaces'),
    netplan: () => inSbin('netplan'),
    'network-manager': () => has('/usr/bin/nmcli', '/bin/nmcli') && has('/etc/NetworkManager/NetworkManager.conf'),
    networkd: () => has('/usr/sbin/ip', '/bin/ip', '/usr/bin/ip') && has('/bin/systemctl', '/usr/bin/systemctl'),
    sysconfig: () => false, // RHEL-family only
  }
  for (const name of priority) {
    if (available[name]?.()) {
      const renderer = name as NetworkRenderer
      return {
        renderer,
        networkVersion: renderer === 'netplan' ? 2 : 1,
        reason: `${name}: first available in ${from} [${priority.join(', ')}]`,
      }
    }
  }
  return {
    renderer: 'unknown',
    networkVersion: 1,
    reason: `no renderer of [${priority.join(', ')}] found in the image: version 1 (the Debian default)`,
  }
}

/** Reads the facts from the ext4 root filesystem at `offset` and decides; falls back to version 1 with the reason. */
export async function detectNetworkRenderer(
  imagePath: string,
  rootPartitionOffsetBytes?: bigint | number,
  opts: { signal?: AbortSignal } = {},
): Promise<NetworkRendererDetection> {
  try {
    const offset =
      rootPartitionOffsetBytes === undefined
        ? await findRootOffset(imagePath, opts.signal)
        : BigInt(rootPartitionOffsetBytes)
    const files = new Set<string>()
    for (const dir of ['/sbin', '/usr/sbin', '/bin', '/usr/bin', '/etc/network', '/etc/NetworkManager']) {
      for (const name of await listDir(imagePath, offset, dir, opts.signal)) files.add(`${dir}/${name}`)
    }
    const cloudConfigs: string[] = []
    const main = await catFile(imagePath, offset, '/etc/cloud/cloud.cfg', opts.signal)
    if (main !== undefined) cloudConfigs.push(main)
    const dropIns = (await listDir(imagePath, offset, '/etc/cloud/cloud.cfg.d', opts.signal))
      .filter((n) => n.endsWith('.cfg'))
      .sort()
    for (const name of dropIns) {
      const text = await catFile(imagePath, offset, `/etc/cloud/cloud.cfg.d/${name}`, opts.signal)
      if (text !== undefined) cloudConfigs.push(text)
    }
    if (main === undefined && files.size === 0) {
      return {
        renderer: 'unknown',
        networkVersion: 1,
        reason: `no root filesystem readable at offset ${offset}: version 1 (the Debian default)`,
      }
    }
    return decideNetworkRenderer({ files, cloudConfigs })
  } catch (e) {
    if (e instanceof HwimageError && e.code === 'INTERRUPTED') throw e
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e)
    return {
      renderer: 'unknown',
      networkVersion: 1,
      reason: `cannot read the image (${why}): version 1 (the Debian default)`,
    }
  }
}

const ROOT_TYPES = ['4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709', '0FC63DAF-8483-4772-8E79-3D69D8477DE4']

/** The byte offset of the image's root partition: x86-64 root type first, then Linux data, then the largest. */
export async function findRootOffset(imagePath: string, signal?: AbortSignal): Promise<bigint> {
  const { stdout } = await run(sfdiskJsonArgv(imagePath), signal ? { signal } : {})
  const table = (
    JSON.parse(stdout) as {
      partitiontable: { sectorsize?: number; partitions?: { start: number; size: number; type: string }[] }
    }
  ).partitiontable
  const parts = table.partitions ?? []
  const pick =
    ROOT_TYPES.map((t) => parts.find((p) => p.type.toUpperCase() === t)).find(Boolean) ??
    [...parts].sort((a, b) => b.size - a.size)[0]
  if (!pick) throw new Error('no partitions')
  return BigInt(pick.start) * BigInt(table.sectorsize ?? 512)
}

async function listDir(image: string, offset: bigint, dir: string, signal?: AbortSignal): Promise<string[]> {
  const { stdout } = await run(debugfsArgv(image, offset, `ls -l ${dir}`), signal ? { signal } : {})
  const names: string[] = []
  // "  21  100644 (1)  0  0  0 25-Nov-2026 21:18 ifup": mode, then the name after the time.
  for (const line of stdout.split('\n')) {
    const m = /^\s*\d+\s+(\d+)\s+\(\d+\)\s+\d+\s+\d+\s+\d+\s+\S+\s+\S+\s(.+)$/.exec(line)
    if (!m || m[2] === '.' || m[2] === '..') continue
    const type = m[1]!.padStart(6, '0').slice(0, 2)
    if (type === '10' || type === '12') names.push(m[2]!) // regular file or symlink
  }
  return names
}

async function catFile(image: string, offset: bigint, file: string, signal?: AbortSignal): Promise<string | undefined> {
  const { stdout, stderr } = await run(debugfsArgv(image, offset, `cat ${file}`), signal ? { signal } : {})
  return /File not found|not a regular file/i.test(stderr) ? undefined : stdout
}
