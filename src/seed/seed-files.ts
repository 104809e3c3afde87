// The files of a seed volume, for either layout, plus `hwimage.json`: the contract
// version, the SHA-256 and size of every other file, and the install report. It holds
// no secrets: user-data and vendor-data appear only as digests.

import { createHash, randomUUID } from 'node:crypto'
import { CONFIG_DRIVE_LABEL, configDriveFiles } from './config-drive.js'
import { NOCLOUD_LABEL, nocloudFiles } from './nocloud.js'
import type { Seed, SeedFormat } from './seed-schema.js'

/** The contract this module writes; docs/first-boot-contract.md describes it. */
export const CONTRACT_VERSION = 'hwimage-seed/1'
/** The manifest file at the root of every seed volume. */
export const MANIFEST_NAME = 'hwimage.json'
/** The GPT partition name of the seed partition; the first-boot cleanup checks it. */
export const SEED_PARTITION_NAME = 'cidata'

/** One file on the volume; `path` is relative, with `/` separators. */
export interface SeedFile {
  path: string
  bytes: Uint8Array
}

/** What the layout renderers need besides the seed. */
export interface SeedLayoutContext {
  contract: string
  instanceId: string
  networkVersion: 1 | 2
  partitionName: string
}

/** What the installer tells the seed about the install (no secrets: it is world-readable on the volume). */
export interface InstallReportSummary {
  image?: { name?: string; sha256?: string; sizeBytes?: number }
  target?: {
    path?: string
    serial?: string
    model?: string
    wwn?: string
    sizeBytes?: number
    logicalSectorSize?: number
  }
  /** ISO 8601 time of the install. */
  time?: string
  tool?: string
}

/** Options of seedFiles(). */
export interface SeedFilesOptions {
  /** Overrides the seed's `format`. */
  format?: SeedFormat
  /** Network config version for NoCloud (default 1, the Debian ifupdown default). */
  networkVersion?: 1 | 2
  /** How the version was chosen, recorded in hwimage.json (e.g. "eni: /usr/sbin/ifup in image"). */
  networkReason?: string
  /** Overrides the seed's instance_id and the fresh UUID. */
  instanceId?: string
  installReport?: InstallReportSummary
  now?: Date
}

/** The rendered volume content. */
export interface SeedLayout {
  format: SeedFormat
  /** The filesystem label the volume must carry. */
  label: string
  instanceId: string
  networkVersion: 1 | 2
  /** Every file, hwimage.json last. */
  files: SeedFile[]
  /** Names cloud-init will change (config-drive bonds and VLANs). */
  warnings: string[]
}

/** Renders every file of the seed volume. */
export function seedFiles(seed: Seed, opts: SeedFilesOptions = {}): SeedLayout {
  const format = opts.format ?? seed.format
  const effective: Seed = { ...seed, format }
  const instanceId = opts.instanceId ?? seed.instanceId ?? randomUUID()
  const networkVersion = opts.networkVersion ?? 1
  const ctx: SeedLayoutContext = {
    contract: CONTRACT_VERSION,
    instanceId,
    networkVersion,
    partitionName: SEED_PARTITION_NAME,
  }
  let files: SeedFile[]
  let warnings: string[] = []
  if (format === 'configdrive') ({ files, warnings } = configDriveFiles(effective, ctx))
  else files = nocloudFiles(effective, ctx)
  const manifest = {
    contract: CONTRACT_VERSION,
    generator: 'hwimage',
    format,
    instance_id: instanceId,
    created: (opts.now ?? new Date()).toISOString(),
    network_config: seed.network
      ? format === 'configdrive'
        ? { form: 'openstack network_data.json' }
        : {
            form: `cloud-init network config version ${networkVersion}`,
            ...(opts.networkReason ? { reason: opts.networkReason } : {}),
          }
      : null,
    report_url: seed.report ? redactUrl(seed.report.url) : null,
    cleanup: seed.cleanup,
    files: Object.fromEntries(
      files.map((f) => [f.path, { sha256: createHash('sha256').update(f.bytes).digest('hex'), size: f.bytes.length }]),
    ),
    install: opts.installReport ?? null,
  }
  files.push({ path: MANIFEST_NAME, bytes: new TextEncoder().encode(JSON.stringify(manifest, null, 2) + '\n') })
  return {
    format,
    label: format === 'configdrive' ? CONFIG_DRIVE_LABEL : NOCLOUD_LABEL,
    instanceId,
    networkVersion,
    files,
    warnings,
  }
}

/** A URL without credentials or query (either may carry a token): for hwimage.json. */
export function redactUrl(url: string): string {
  const u = new URL(url)
  u.username = ''
  u.password = ''
  u.search = ''
  u.hash = ''
  return u.toString()
}
