// The NoCloud layout (cloud-init 22.4 DataSourceNoCloud): a volume labelled CIDATA
// holding `meta-data` and `user-data` (both required, user-data may be empty),
// `vendor-data` and `network-config` (optional).

import { toCloudInitYaml } from './cloud-yaml.js'
import { renderNetworkConfigV1, renderNetworkConfigV2 } from './network-config.js'
import type { Seed } from './seed-schema.js'
import { renderUserData } from './user-data.js'
import { renderVendorData } from './vendor-data.js'
import type { SeedFile, SeedLayoutContext } from './seed-files.js'

/** The filesystem label cloud-init looks for (it also accepts lowercase). */
export const NOCLOUD_LABEL = 'CIDATA'

/** The NoCloud files for a seed. */
export function nocloudFiles(seed: Seed, ctx: SeedLayoutContext): SeedFile[] {
  const files: SeedFile[] = [
    text('meta-data', toCloudInitYaml(nocloudMetaData(seed, ctx.instanceId))),
    text('user-data', renderUserData(seed)),
  ]
  const vendor = renderVendorData(seed, {
    contract: ctx.contract,
    label: NOCLOUD_LABEL,
    partitionName: ctx.partitionName,
  })
  if (vendor !== undefined) files.push(text('vendor-data', vendor))
  if (seed.network) {
    const config = ctx.networkVersion === 2 ? renderNetworkConfigV2(seed.network) : renderNetworkConfigV1(seed.network)
    files.push(text('network-config', toCloudInitYaml(config)))
  }
  return files
}

/** NoCloud meta-data: instance-id, local-hostname (the FQDN when given), public-keys. */
export function nocloudMetaData(seed: Seed, instanceId: string): Record<string, unknown> {
  const md: Record<string, unknown> = { 'instance-id': instanceId }
  const host = seed.fqdn ?? seed.hostname
  if (host) md['local-hostname'] = host
  const keys = publicKeys(seed)
  if (keys.length) md['public-keys'] = keys
  return md
}

/** Every user's keys, each once: meta-data's public-keys go to the image's default user if there is one. */
export function publicKeys(seed: Seed): string[] {
  return [...new Set(seed.users.flatMap((u) => u.sshAuthorizedKeys))]
}

function text(path: string, content: string): SeedFile {
  return { path, bytes: new TextEncoder().encode(content) }
}
