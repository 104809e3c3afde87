// The seeds lab boots use, built with src/seed: a hostname, a report URL the lab
// listens on, and a cloud-config that prints hwimage's marker lines on the serial
// console (the console is how the lab sees the hostname and the grown root size).

import { toCloudInitYaml } from '../seed/cloud-yaml.js'
import { validateSeed, type Seed } from '../seed/seed-schema.js'
import { DF_MARKER, READY_MARKER } from './console-watch.js'

/** The cloud-config that prints the marker lines; runcmd runs in cloud-init's final stage. */
export function consoleMarkersCloudConfig(): Record<string, unknown> {
  const script = [
    `echo "${READY_MARKER} $(hostname)" > /dev/ttyS0`,
    `df -B1 / | sed "s|^|${DF_MARKER} |" > /dev/ttyS0`,
  ].join('; ')
  return { runcmd: [['sh', '-c', script]] }
}

/** A lab seed: hostname, console markers, and a report URL when the lab listens for one. */
export function labSeed(opts: { hostname: string; reportUrl?: string; instanceId?: string }): Seed {
  return validateSeed(
    {
      hostname: opts.hostname,
      ...(opts.instanceId ? { instance_id: opts.instanceId } : {}),
      user_data: consoleMarkersCloudConfig(),
      ...(opts.reportUrl ? { report: { url: opts.reportUrl } } : {}),
    },
    'lab seed',
  )
}

/**
 * An operator's seed with the console markers added as vendor-data, when it has no
 * vendor-data of its own (the operator's user-data is left as it is; if it has its
 * own runcmd, cloud-init keeps that one and the markers are simply not printed).
 */
export function withConsoleMarkers(seed: Seed): Seed {
  if (seed.vendorData !== undefined) return seed
  return { ...seed, vendorData: `#cloud-config\n${toCloudInitYaml(consoleMarkersCloudConfig())}` }
}
