// The seed volume as one file: what `hwimage seed` writes and what the installer
// copies into the seed partition at the end of the disk.

import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GUID_MS_BASIC_DATA } from '../disk/guid.js'
import { SEED_PARTITION_NAME, seedFiles, type InstallReportSummary } from './seed-files.js'
import { SEED_VOLUME_BYTES, type Seed, type SeedFormat } from './seed-schema.js'
import { writeFatVolume, writeIsoVolume, type SeedFs } from './volume.js'
import { InputError } from '../errors.js'

/** The seed partition the installer adds after the image: 16 MiB, 1 MiB aligned, Microsoft basic data, named "cidata". */
export const SEED_PARTITION = {
  sizeBytes: SEED_VOLUME_BYTES,
  alignBytes: 1024 * 1024,
  name: SEED_PARTITION_NAME,
  typeGuid: GUID_MS_BASIC_DATA,
} as const

/**
 * The largest seed volume made: 256 MiB. The files fit in 16 MiB (the schema's budget,
 * SEED_VOLUME_BYTES), so a larger volume holds nothing more; the room is for a volume
 * made to fill a partition or a BMC's virtual-media slot.
 */
export const MAX_SEED_VOLUME_BYTES = 256 * 1024 * 1024

/** Options of makeSeedVolume(). */
export interface SeedVolumeOptions {
  /** Overrides the seed's `format`. */
  format?: SeedFormat
  /** Default vfat. */
  fs?: SeedFs
  /** FAT bytes per sector: the target's logical sector size (default 512). */
  sectorSize?: 512 | 4096
  /** FAT: the exact volume size; ISO: an upper bound. Default 16 MiB. */
  sizeBytes?: number
  /** NoCloud network config version (see detectNetworkRenderer); default 1. */
  networkVersion?: 1 | 2
  networkReason?: string
  instanceId?: string
  installReport?: InstallReportSummary
  /** Where the temporary directory goes (default os.tmpdir()). */
  tmpDir?: string
  signal?: AbortSignal
}

/** A seed volume in a temporary file. */
export interface SeedVolume {
  /** The volume image; remove it with dispose(). */
  path: string
  sizeBytes: number
  format: SeedFormat
  fs: SeedFs
  label: string
  instanceId: string
  networkVersion: 1 | 2
  /** Every file on the volume with its digest (hwimage.json included). */
  files: { path: string; sha256: string; size: number }[]
  /** Names cloud-init will change (config-drive bonds and VLANs); print them. */
  warnings: string[]
  /** Removes the temporary directory. */
  dispose(): Promise<void>
}

/** Renders the seed and writes it as a FAT or ISO 9660 volume in a temporary file. */
export async function makeSeedVolume(seed: Seed, opts: SeedVolumeOptions = {}): Promise<SeedVolume> {
  const fs = opts.fs ?? 'vfat'
  const sizeBytes = opts.sizeBytes ?? SEED_PARTITION.sizeBytes
  const sectorSize = opts.sectorSize ?? 512
  if (sizeBytes > MAX_SEED_VOLUME_BYTES) {
    throw new InputError(
      'SEED_INVALID',
      `Cannot make a seed volume of ${sizeBytes} bytes: the largest is ${MAX_SEED_VOLUME_BYTES / 1024 / 1024} MiB`,
      {
        hint: `the seed's files fit in ${SEED_VOLUME_BYTES / 1024 / 1024} MiB, the default size`,
      },
    )
  }
  const layout = seedFiles(seed, {
    ...(opts.format ? { format: opts.format } : {}),
    ...(opts.networkVersion ? { networkVersion: opts.networkVersion } : {}),
    ...(opts.networkReason ? { networkReason: opts.networkReason } : {}),
    ...(opts.instanceId ? { instanceId: opts.instanceId } : {}),
    ...(opts.installReport ? { installReport: opts.installReport } : {}),
  })
  const dir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'hwimage-seed-'))
  const dispose = () => rm(dir, { recursive: true, force: true })
  try {
    const path = join(dir, fs === 'iso9660' ? 'seed.iso' : 'seed.img')
    let size = sizeBytes
    if (fs === 'iso9660') {
      size = await writeIsoVolume(layout.files, path, layout.label, opts.signal)
      if (opts.sizeBytes !== undefined && size > opts.sizeBytes) {
        throw new InputError(
          'SEED_INVALID',
          `Cannot write seed volume: the ISO image is ${size} bytes, more than ${opts.sizeBytes}`,
        )
      }
    } else {
      await writeFatVolume(layout.files, path, { label: layout.label, sectorSize, sizeBytes }, opts.signal)
    }
    return {
      path,
      sizeBytes: size,
      format: layout.format,
      fs,
      label: layout.label,
      instanceId: layout.instanceId,
      networkVersion: layout.networkVersion,
      files: layout.files.map((f) => ({
        path: f.path,
        sha256: createHash('sha256').update(f.bytes).digest('hex'),
        size: f.bytes.length,
      })),
      warnings: layout.warnings,
      dispose,
    }
  } catch (e) {
    await dispose()
    throw e
  }
}

/** Reads a volume made by makeSeedVolume() into memory (small: at most 16 MiB). */
export async function readSeedVolume(volume: Pick<SeedVolume, 'path'>): Promise<Uint8Array> {
  return new Uint8Array(await readFile(volume.path))
}
