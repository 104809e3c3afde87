// A minimal NoCloud seed volume for lab boots, until src/seed's makeSeedVolume()
// takes over: a FAT file system labelled CIDATA (cloud-init's NoCloud datasource
// finds it by label) holding meta-data and a #cloud-config user-data that prints
// hwimage's marker lines on the serial console and, when given a URL, phones home.

import { randomUUID } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { run } from '../tools/run.js'
import { DF_MARKER, READY_MARKER } from './console-watch.js'

/** What the minimal seed sets. */
export interface MinimalSeedOptions {
  hostname: string
  /** Default: a fresh `hwimage-<uuid>` (cloud-init runs first-boot modules once per instance id). */
  instanceId?: string
  /** cloud-init phone_home POSTs here at the end of first boot (as seen from the guest). */
  reportUrl?: string
}

/** The NoCloud files of the minimal seed: meta-data and user-data. */
export function minimalSeedFiles(opts: MinimalSeedOptions): { 'meta-data': string; 'user-data': string } {
  const metaData = stringify({ 'instance-id': opts.instanceId ?? `hwimage-${randomUUID()}`, 'local-hostname': opts.hostname })
  // runcmd runs in cloud-init's final stage, just before "Cloud-init v. … finished".
  const console = [
    `echo "${READY_MARKER} $(hostname)" > /dev/ttyS0`,
    `df -B1 / | sed "s|^|${DF_MARKER} |" > /dev/ttyS0`,
  ].join('; ')
  const config: Record<string, unknown> = { runcmd: [['sh', '-c', console]] }
  if (opts.reportUrl) config.phone_home = { url: opts.reportUrl, post: ['instance_id', 'hostname', 'fqdn'], tries: 10 }
  return { 'meta-data': metaData, 'user-data': `#cloud-config\n${stringify(config)}` }
}

/** Writes a 2 MiB FAT volume labelled CIDATA with the minimal seed's files to `path`. */
export async function makeMinimalSeedVolume(path: string, opts: MinimalSeedOptions): Promise<void> {
  const files = minimalSeedFiles(opts)
  const dir = await mkdtemp(`${path}.files-`)
  try {
    await rm(path, { force: true })
    await run(['mkfs.vfat', '-n', 'CIDATA', '-C', path, '2048'])
    for (const [name, text] of Object.entries(files)) {
      await writeFile(join(dir, name), text)
      await run(['mcopy', '-i', path, join(dir, name), `::${name}`])
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
