// The OpenStack config-drive layout (cloud-init 22.4 DataSourceConfigDrive, version 2),
// as Ironic writes it: a volume labelled config-2 holding openstack/latest/ with
// meta_data.json (uuid is the instance-id), user_data, network_data.json and
// vendor_data2.json ({"cloud-init": <vendor-data>}, which cloud-init unwraps).

import { renderNetworkData } from './network-data.js'
import { publicKeys } from './nocloud.js'
import type { Seed } from './seed-schema.js'
import type { SeedFile, SeedLayoutContext } from './seed-files.js'
import { renderUserData } from './user-data.js'
import { renderVendorData } from './vendor-data.js'

/** The filesystem label cloud-init looks for (it also accepts CONFIG-2). */
export const CONFIG_DRIVE_LABEL = 'config-2'
/** The directory cloud-init reads; `latest` is chosen when no dated version is present. */
export const CONFIG_DRIVE_DIR = 'openstack/latest'

/** The config-drive files for a seed, and warnings about names cloud-init will change. */
export function configDriveFiles(seed: Seed, ctx: SeedLayoutContext): { files: SeedFile[]; warnings: string[] } {
  const files: SeedFile[] = [json(`${CONFIG_DRIVE_DIR}/meta_data.json`, configDriveMetaData(seed, ctx.instanceId))]
  const userData = renderUserData(seed)
  if (userData !== '') files.push(text(`${CONFIG_DRIVE_DIR}/user_data`, userData))
  let warnings: string[] = []
  if (seed.network) {
    const rendered = renderNetworkData(seed.network)
    warnings = rendered.warnings
    files.push(json(`${CONFIG_DRIVE_DIR}/network_data.json`, rendered.data))
  }
  const vendor = renderVendorData(seed, {
    contract: ctx.contract,
    label: CONFIG_DRIVE_LABEL,
    partitionName: ctx.partitionName,
  })
  if (vendor !== undefined) files.push(json(`${CONFIG_DRIVE_DIR}/vendor_data2.json`, { 'cloud-init': vendor }))
  return { files, warnings }
}

/** meta_data.json: uuid (→ instance-id), hostname (→ local-hostname), name, public_keys. */
export function configDriveMetaData(seed: Seed, instanceId: string): Record<string, unknown> {
  const md: Record<string, unknown> = { uuid: instanceId }
  const host = seed.fqdn ?? seed.hostname
  if (host) Object.assign(md, { hostname: host, name: seed.hostname ?? host })
  const keys = publicKeys(seed)
  if (keys.length) md.public_keys = Object.fromEntries(keys.map((k, i) => [`key-${i}`, k]))
  md.launch_index = 0
  return md
}

function json(path: string, value: unknown): SeedFile {
  return text(path, JSON.stringify(value, null, 2) + '\n')
}

function text(path: string, content: string): SeedFile {
  return { path, bytes: new TextEncoder().encode(content) }
}
