// What the deploy environment is told to do next, from the machine's state and the
// config (pure): install an image (its URL, digests, disk hints, seed URL), wait for an
// operator, stay put after a failure, or reboot into the installed disk. And the seed it
// gets: the assigned seed YAML with a report URL to serve (and the machine's token) when
// the seed names none, so the installed system's first-boot report reaches serve.

import { parse as parseYaml, stringify as stringifyYaml } from 'yaml'
import type { ServeConfig } from './config.js'
import type { ServeImages } from './serve-images.js'
import type { MachineRecord } from './state/store.js'

/** The deploy environment's next step. */
export type DeployTask =
  | {
      action: 'install'
      state: string
      image: { name: string; url: string; sha256Url: string; bmapUrl: string }
      diskHints: string[]
      seedUrl: string | null
    }
  | { action: 'wait' | 'stop' | 'reboot'; state: string; reason: string }

/** The task for a machine. */
export function deployTask(
  m: MachineRecord,
  app: { config: Pick<ServeConfig, 'publicUrl'>; images: Pick<ServeImages, 'get'> },
): DeployTask {
  const base = app.config.publicUrl
  if (m.state === 'installed' || m.state === 'deployed')
    return { action: 'reboot', state: m.state, reason: 'the machine is installed: boot from its disk' }
  if (m.state === 'failed')
    return { action: 'stop', state: m.state, reason: 'the last deploy failed: an operator can redeploy' }
  const image = m.image === null ? undefined : app.images.get(m.image)
  if (m.state !== 'deploying' || !image)
    return {
      action: 'wait',
      state: m.state,
      reason: image ? 'waiting for the inventory' : 'no image assigned: waiting for an operator',
    }
  const dir = `${base}/images/${encodeURIComponent(image.name)}`
  return {
    action: 'install',
    state: m.state,
    image: {
      name: image.name,
      url: `${dir}/${encodeURIComponent(image.file)}`,
      sha256Url: `${dir}/SHA256SUMS`,
      bmapUrl: `${dir}/${encodeURIComponent(image.file.replace(/\.zst$/, '.bmap'))}`,
    },
    diskHints: m.diskHints,
    seedUrl: m.hasSeed ? `${base}/api/v1/machines/${m.mac}/seed` : null,
  }
}

/** The seed YAML as served: with `report: {url, token}` pointing at serve when the seed has no report of its own. */
export function seedForMachine(seedYaml: string, mac: string, publicUrl: string, token: string): string {
  const data = (parseYaml(seedYaml) ?? {}) as Record<string, unknown>
  if (data.report !== undefined) return seedYaml
  return stringifyYaml({ ...data, report: { url: `${publicUrl}/api/v1/machines/${mac}/report`, token } })
}
