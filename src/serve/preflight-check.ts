// serve's pre-flight hardware check (network deploy issue): when a deploying machine's
// inventory arrives, or an image is assigned to a machine whose inventory is known, the
// disk its hints choose (src/deploy/choose-disk.ts, as the deploy agent chooses it) and
// its NICs are checked against the image's kernel (src/deploy/preflight.ts). A refusal,
// or hints that match no disk, fails the machine with the reason before anything is
// installed: its task becomes "stop". An image whose kernel cannot be read (a build
// directory without manifest.json or raw NAME.img) is not refused — the check needs
// evidence — and the skip is an event.
//
// Each image's kernel is read once per serve (cached by directory). Debian's generic
// kernel, which names the module and flavor a refused device needs, takes seconds to
// open: it is loaded on the first refusal and waited for at most GENERIC_WAIT_MS, so the
// inventory route answers in time; later refusals have it.

import { chooseDisk } from '../deploy/choose-disk.js'
import { type ImageKernel, loadImageKernel } from '../deploy/image-kernel.js'
import type { Inventory } from '../deploy/inventory-types.js'
import { type PreflightOptions, type PreflightVerdict, preflight } from '../deploy/preflight.js'
import { HwimageError } from '../errors.js'
import type { ServeApp } from './route.js'
import type { MachineRecord } from './state/store.js'

/** What the check found for a machine. */
export type PreflightOutcome =
  | { kind: 'ok'; disk: string; verdict: PreflightVerdict }
  | { kind: 'refused'; disk: string; verdict: PreflightVerdict; message: string }
  | { kind: 'no-disk'; code: string; message: string }
  | { kind: 'skipped'; message: string }

/** The error code a refusal is stored with. */
export const PREFLIGHT_REFUSED = 'PREFLIGHT_REFUSED'

type Generic = NonNullable<PreflightOptions['generic']>

/** The check for one inventory, hints and image kernel (no state): what serve records. */
export async function checkInventory(
  inventory: Inventory,
  diskHints: readonly string[],
  loadKernel: () => Promise<ImageKernel>,
  loadGeneric: () => Promise<Generic | undefined> = async () => undefined,
): Promise<PreflightOutcome> {
  let diskPath: string
  try {
    diskPath = chooseDisk(inventory, diskHints).path
  } catch (e) {
    if (e instanceof HwimageError && e.code !== 'INTERNAL') {
      const hint = e.hint ? ` (${e.hint})` : ''
      return { kind: 'no-disk', code: e.code, message: `${e.message}${hint}` }
    }
    throw e
  }
  let kernel: ImageKernel
  try {
    kernel = await loadKernel()
  } catch (e) {
    return { kind: 'skipped', message: (e as Error).message }
  }
  let verdict = preflight(inventory, kernel, { diskPath })
  if (verdict.ok) return { kind: 'ok', disk: diskPath, verdict }
  const generic = await loadGeneric()
  if (generic) verdict = preflight(inventory, kernel, { diskPath, generic })
  const message = `Cannot install ${diskPath}: ${verdict.problems.map((p) => p.message).join('; ')}`
  return { kind: 'refused', disk: diskPath, verdict, message }
}

const GENERIC_SOURCE = 'apt:linux-image-amd64'
const GENERIC_WAIT_MS = 5_000
const kernels = new Map<string, Promise<ImageKernel>>()
let generic: Promise<Generic | undefined> | undefined

function imageKernel(dir: string): Promise<ImageKernel> {
  let p = kernels.get(dir)
  if (!p) {
    p = loadImageKernel(dir)
    kernels.set(dir, p)
    // A failure is not kept: the directory may be completed or rebuilt while serve runs.
    p.catch(() => kernels.delete(dir))
  }
  return p
}

async function genericKernel(): Promise<Generic | undefined> {
  generic ??= import('../kernel/kernel-package.js')
    .then((m) => m.openKernel(GENERIC_SOURCE) as Promise<Generic>)
    .catch(() => undefined)
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<undefined>((r) => {
    timer = setTimeout(() => r(undefined), GENERIC_WAIT_MS)
  })
  try {
    return await Promise.race([generic, late])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Runs the check for a machine that is deploying with an image and an inventory, and
 * records the outcome (a refusal fails the machine). Returns the machine as it is after.
 */
export async function preflightMachine(app: ServeApp, m: MachineRecord): Promise<MachineRecord> {
  if (m.state !== 'deploying' || m.image === null || m.inventory === null) return m
  const image = app.images.get(m.image)
  if (!image) return m
  const outcome = await checkInventory(m.inventory, m.diskHints, () => imageKernel(image.dir), genericKernel)
  switch (outcome.kind) {
    case 'ok':
      return app.store.recordEvent(m.mac, 'preflight', {
        ok: true,
        image: image.name,
        disk: outcome.disk,
        kernel: outcome.verdict.checked.kernel,
        devices: outcome.verdict.checked.devices,
      })
    case 'skipped':
      return app.store.recordEvent(m.mac, 'preflight', { ok: null, image: image.name, skipped: outcome.message })
    case 'no-disk':
      return app.store.recordEvent(m.mac, 'failed', { code: outcome.code, message: outcome.message })
    case 'refused':
      app.log({ event: 'preflight-refused', mac: m.mac, image: image.name, message: outcome.message })
      return app.store.recordEvent(m.mac, 'failed', {
        code: PREFLIGHT_REFUSED,
        message: outcome.message,
        image: image.name,
        disk: outcome.disk,
        problems: outcome.verdict.problems.map((p) => ({
          role: p.role,
          address: p.device.address,
          id: `${p.device.vendor}:${p.device.device}`,
          genericModules: p.genericModules,
        })),
      })
  }
}
