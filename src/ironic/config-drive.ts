// The config drive Ironic hands the agent (write_image's args.configdrive: an ISO 9660
// image labelled config-2, gzipped and base64-encoded; ironic/conductor/utils.py
// get_configdrive_image) written as ironic-python-agent writes it (ironic_lib's
// disk_utils.create_config_drive_partition): after the image, with the backup GPT moved to
// the disk's end, a new partition from 64 MiB before the end of the disk to the last
// usable sector, holding the ISO as it is (on a disk with 4096-byte sectors, a vfat volume
// labelled CONFIG-2 with the ISO's files). cloud-init finds it by the label.

import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import type { Gpt, GptPartition } from '../disk/gpt.js'
import { GUID_LINUX_DATA, randomGuid } from '../disk/guid.js'
import type { PlacedPartition, SeedStep } from '../install/install-options.js'
import { alignedBytes } from '../io/aligned-memory.js'
import { writeFatVolume } from '../seed/volume.js'
import { CommandFailure } from './commands.js'
import { IsoError, readIsoFiles } from './iso9660.js'

/** IPA's config drive partition: the disk's last 64 MiB. */
export const CONFIG_DRIVE_PARTITION_BYTES = 64 * 1024 * 1024
const MIB = 1024 * 1024

/** The ISO's volume identifier (primary volume descriptor at 32 KiB; ECMA-119 8.4), or undefined when not ISO 9660. */
export function isoVolumeId(iso: Uint8Array): string | undefined {
  const pvd = 16 * 2048
  if (iso.length < pvd + 2048) return undefined
  if (iso[pvd] !== 1 || Buffer.from(iso.subarray(pvd + 1, pvd + 6)).toString('latin1') !== 'CD001') return undefined
  return Buffer.from(iso.subarray(pvd + 40, pvd + 72))
    .toString('latin1')
    .trimEnd()
}

/** Ironic's configdrive string → the ISO bytes (base64 of gzip, or base64 of the bare ISO as IPA also takes). */
export function decodeConfigDrive(text: string): Uint8Array {
  const bytes = Buffer.from(text.trim(), 'base64')
  let iso: Uint8Array = bytes
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      iso = new Uint8Array(gunzipSync(bytes))
    } catch (e) {
      throw new CommandFailure(
        'InstanceDeployFailure',
        `config drive: the gzip stream is damaged (${(e as Error).message})`,
      )
    }
  }
  const label = isoVolumeId(iso)
  if (label === undefined)
    throw new CommandFailure(
      'InstanceDeployFailure',
      'config drive: not an ISO 9660 image after base64 and gzip decoding (Ironic passes configdrive as base64 of a gzipped ISO)',
    )
  if (label.toLowerCase() !== 'config-2')
    throw new CommandFailure(
      'InstanceDeployFailure',
      `config drive: the ISO is labelled "${label}", cloud-init looks for config-2`,
    )
  if (iso.length > CONFIG_DRIVE_PARTITION_BYTES)
    throw new CommandFailure(
      'InstanceDeployFailure',
      `config drive: the ISO is ${iso.length} bytes, more than the ${CONFIG_DRIVE_PARTITION_BYTES}-byte partition`,
    )
  return iso
}

/** Places the config drive partition in a table already sized for the disk: [end − 64 MiB (MiB-aligned), LastUsableLBA]. */
export function placeConfigDrive(gpt: Gpt): PlacedPartition & { partition: GptPartition } {
  const ss = BigInt(gpt.sectorSize)
  const diskBytes = gpt.diskSectors * ss
  const startBytes = ((diskBytes - BigInt(CONFIG_DRIVE_PARTITION_BYTES)) / BigInt(MIB)) * BigInt(MIB)
  const firstLba = startBytes / ss
  const usedEnd = gpt.partitions.reduce((m, p) => (p.lastLba > m ? p.lastLba : m), gpt.firstUsableLba - 1n)
  if (firstLba <= usedEnd)
    throw new CommandFailure(
      'InstanceDeployFailure',
      `config drive: no room for its partition in the disk's last 64 MiB (the image's partitions end at sector ${usedEnd}, the partition would start at ${firstLba}): use a larger disk`,
    )
  const used = new Set(gpt.partitions.map((p) => p.number))
  let number = 1
  while (used.has(number)) number++
  if (number > gpt.entryCount)
    throw new CommandFailure('InstanceDeployFailure', 'config drive: every partition entry of the table is used')
  const partition: GptPartition = {
    number,
    typeGuid: GUID_LINUX_DATA,
    uniqueGuid: randomGuid(),
    firstLba,
    lastLba: gpt.lastUsableLba,
    attributes: 0n,
    name: 'config-2',
  }
  const partitions = [...gpt.partitions, partition].sort((a, b) => a.number - b.number)
  const sizeBytes = Number((gpt.lastUsableLba - firstLba + 1n) * ss)
  return { gpt: { ...gpt, partitions }, number, offset: Number(startBytes), sizeBytes, partition }
}

/**
 * The config drive as a vfat volume labelled CONFIG-2 with `sectorSize`-byte sectors, filling
 * `sizeBytes`: the ISO's files (Rock Ridge names) copied onto it. For a disk with 4096-byte
 * sectors, where an ISO 9660 file system (2048-byte blocks) cannot be read from a partition;
 * cloud-init's ConfigDrive source looks for the label config-2 or CONFIG-2 on iso9660 or vfat.
 */
export async function configDriveVfat(iso: Uint8Array, sectorSize: 4096, sizeBytes: number): Promise<Uint8Array> {
  let files: ReturnType<typeof readIsoFiles>
  try {
    files = readIsoFiles(iso)
  } catch (e) {
    if (!(e instanceof IsoError)) throw e
    throw new CommandFailure('InstanceDeployFailure', `config drive: cannot read the ISO's files: ${e.message}`)
  }
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-configdrive-'))
  try {
    const out = join(dir, 'config-2.vfat')
    await writeFatVolume(files, out, { label: 'CONFIG-2', sectorSize, sizeBytes })
    return new Uint8Array(await readFile(out))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** The installer's seam (src/install/install-options.ts SeedStep) writing `iso` as IPA does. */
export function configDriveStep(iso: Uint8Array): SeedStep {
  return {
    place(gpt) {
      if (gpt.sectorSize !== 512 && gpt.sectorSize !== 4096)
        throw new CommandFailure(
          'InstanceDeployFailure',
          `config drive: the disk has ${gpt.sectorSize}-byte sectors; only 512 (an ISO 9660 partition) and 4096 (vfat CONFIG-2) are written`,
        )
      const { partition: _p, ...placed } = placeConfigDrive(gpt)
      return placed
    },
    async write({ placed, target }) {
      const ss = placed.gpt.sectorSize
      // On 4096-byte sectors the partition holds a vfat copy of the ISO's files, as IPA writes it.
      const volume = ss === 4096 ? await configDriveVfat(iso, 4096, placed.sizeBytes) : iso
      const padded = Math.ceil(volume.length / ss) * ss
      const buf = alignedBytes(padded)
      buf.set(volume)
      await target.write(placed.offset, buf)
      if (placed.sizeBytes > padded) await target.writeZeros(placed.offset + padded, placed.sizeBytes - padded)
      await target.sync()
    },
  }
}
