// The lab's disk preparation, one function to swap: today a copy-on-write qcow2
// overlay over the image (bigger than the image, the image untouched) plus the seed
// volume (src/seed) on its own disk; later the real installer writing the image and
// its seed partition onto a fresh target disk.

import { copyFile, rename, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { qemuImgOverlayArgv, type QemuDisk } from '../tools/qemu.js'
import { run } from '../tools/run.js'
import { UsageError } from '../errors.js'
import type { LabImage } from './image-source.js'
import { makeSeedVolume } from '../seed/make-seed-volume.js'
import type { Seed } from '../seed/seed-schema.js'

/** The seed a prepared disk carries. */
export type LabSeed =
  /** a seed rendered by src/seed as a 16 MiB NoCloud (or config-2) FAT volume */
  | { kind: 'seed'; seed: Seed }
  /** a seed volume made elsewhere (`hwimage seed`), attached as is */
  | { kind: 'volume'; path: string }

/** What to prepare. */
export interface PrepareDiskOptions {
  image: LabImage
  /** This boot's directory: the overlay and seed are written here. */
  workDir: string
  /** Virtual size of the target disk (the root partition grows into it on first boot). */
  sizeBytes: bigint
  seed: LabSeed
  signal?: AbortSignal
}

/** Makes the target disk and seed for one boot; returns the disks to attach. */
export async function prepareLabDisks(opts: PrepareDiskOptions): Promise<QemuDisk[]> {
  const overlay = join(opts.workDir, 'disk.qcow2')
  if (opts.image.format === 'raw') {
    const imageBytes = BigInt((await stat(opts.image.path)).size)
    if (opts.sizeBytes < imageBytes) {
      throw new UsageError(`Cannot make a ${opts.sizeBytes}-byte target disk: the image is ${imageBytes} bytes`, {
        hint: 'give a --disk-size at least as big as the image',
      })
    }
  }
  await run(
    qemuImgOverlayArgv({
      backing: opts.image.path,
      backingFormat: opts.image.format,
      overlay,
      sizeBytes: opts.sizeBytes,
    }),
    {
      signal: opts.signal,
    },
  )
  const seedPath = join(opts.workDir, 'seed.img')
  if (opts.seed.kind === 'seed') {
    const volume = await makeSeedVolume(opts.seed.seed, {
      tmpDir: opts.workDir,
      ...(opts.signal ? { signal: opts.signal } : {}),
    })
    try {
      await rename(volume.path, seedPath)
    } finally {
      await volume.dispose()
    }
  } else {
    // A copy, so the guest cannot change the operator's file.
    await copyFile(opts.seed.path, seedPath)
  }
  return [
    { path: overlay, format: 'qcow2', role: 'boot' },
    { path: seedPath, format: 'raw', role: 'seed' },
  ]
}
