// The lab's target disk made the way a server's is: `hwimage install` writes the image
// onto a fresh (sparse) disk file with its seed partition at the end — the same
// installer, seam and seed volume as `hwimage install IMAGE --disk T --seed SEED.yaml`.

import { open, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { withContext } from '../errors.js'
import { install } from '../install/install.js'
import { seedStep } from '../install/seed-partition.js'
import type { DiskPreparer } from './matrix.js'

/** Installs the image with the cell's seed onto `disk.img` (a sparse file of the target size) in the cell's directory. */
export const installPreparer: DiskPreparer = async (ctx) => {
  const disk = join(ctx.workDir, 'disk.img')
  await rm(disk, { force: true })
  const fh = await open(disk, 'w')
  try {
    await fh.truncate(Number(ctx.sizeBytes))
  } finally {
    await fh.close()
  }
  try {
    await install({
      source: ctx.image.path,
      disk,
      yes: true,
      seed: seedStep(ctx.seed),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    })
  } catch (e) {
    throw withContext(
      `installing "${ctx.image.path}" for the cell ${ctx.cell.firmware} × ${ctx.cell.storage} × ${ctx.cell.nic}`,
      e,
    )
  }
  return [{ path: disk, format: 'raw', role: 'boot' }]
}
