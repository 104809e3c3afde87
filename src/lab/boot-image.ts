// One image, one machine: the boot `hwimage boot` (and `make demo`) runs. A fresh
// target disk with the seed, QEMU with the chosen firmware, controller and NIC, and
// the boot followed until cloud-init's final stage; then what the console proved.

import { mkdir, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { classifyNic, classifyStorage, loadDeviceCatalog } from '../tools/qemu-devices.js'
import { macAddressFor, type Firmware } from '../tools/qemu.js'
import { bootCell, tenths } from './boot-cell.js'
import type { Milestone } from './console-watch.js'
import type { Diagnosis } from './diagnose.js'
import { resolveLabImage } from './image-source.js'
import { prepareLabDisks, type LabSeed } from './prepare-disk.js'
import { labSeed, withConsoleMarkers } from './lab-seed.js'
import type { Seed } from '../seed/seed-schema.js'

/** What `hwimage boot` boots. */
export interface BootImageOptions {
  /** An image file or a build output directory. */
  image: string
  firmware: Firmware
  storage: string
  nic: string
  /** The seed: the lab seed with this hostname, an operator's seed (markers added), or a ready volume. */
  seed: { kind: 'default'; hostname: string } | { kind: 'seed'; seed: Seed } | { kind: 'volume'; path: string }
  diskSizeBytes: bigint
  timeoutMs: number
  memoryMiB: number
  cpus: number
  /** Where this boot's files go; default a new temp directory. The serial log is kept. */
  workDir?: string
  /** Keep the overlay disk after the boot (default: removed). */
  keepDisk?: boolean
  signal?: AbortSignal
  onMilestone?: (m: Milestone) => void
}

/** What one boot proved. */
export interface BootImageResult {
  /** Final stage reached and, for uefi-sb, the kernel reports Secure Boot enabled. */
  ok: boolean
  image: string
  firmware: Firmware
  storage: string
  nic: string
  /** The kernel's Secure Boot report; null when it printed none (BIOS boots). */
  secureBoot: 'enabled' | 'disabled' | 'unknown' | null
  finalStage: boolean
  secondsToFinalStage: number | null
  hostname: string | null
  rootBytes: number | null
  kernelVersion: string | null
  cloudInitVersion: string | null
  datasource: string | null
  /** Seconds the whole boot ran. */
  seconds: number
  milestones: Milestone[]
  diagnosis: Diagnosis | null
  serialLog: string
}

/** Boots an image once and reports firmware, Secure Boot, cloud-init's final stage, hostname and root size. */
export async function bootImage(opts: BootImageOptions): Promise<BootImageResult> {
  const catalog = await loadDeviceCatalog()
  const storage = classifyStorage(catalog, opts.storage)
  const nic = classifyNic(catalog, opts.nic)
  const image = await resolveLabImage(opts.image)
  const workDir = opts.workDir ? resolve(opts.workDir) : await mkdtemp(join(tmpdir(), 'hwimage-boot-'))
  await mkdir(workDir, { recursive: true })
  const seed: LabSeed =
    opts.seed.kind === 'volume'
      ? opts.seed
      : {
          kind: 'seed',
          seed:
            opts.seed.kind === 'seed' ? withConsoleMarkers(opts.seed.seed) : labSeed({ hostname: opts.seed.hostname }),
        }
  const signal = opts.signal ? { signal: opts.signal } : {}
  const { boot, verdict } = await bootCell({
    machine: {
      firmware: opts.firmware,
      storage,
      nic,
      memoryMiB: opts.memoryMiB,
      cpus: opts.cpus,
      macAddress: macAddressFor(1),
      name: 'hwimage-boot',
    },
    prepare: () => prepareLabDisks({ image, workDir, sizeBytes: opts.diskSizeBytes, seed, ...signal }),
    workDir,
    timeoutMs: opts.timeoutMs,
    until: (c) => c.has('cloud-init-final'),
    keepDisks: opts.keepDisk === true,
    ...signal,
    ...(opts.onMilestone ? { onMilestone: opts.onMilestone } : {}),
  })
  const f = boot.facts
  const final = verdict.finalStage
  return {
    ok: verdict.pass,
    image: image.path,
    firmware: opts.firmware,
    storage: opts.storage,
    nic: opts.nic,
    secureBoot: f.secureBoot ?? null,
    finalStage: final !== undefined,
    secondsToFinalStage: final ? tenths(final.at) : null,
    hostname: f.hostname ?? null,
    rootBytes: f.rootBytes ?? null,
    kernelVersion: f.kernelVersion ?? null,
    cloudInitVersion: f.cloudInitVersion ?? null,
    datasource: f.datasource ?? null,
    seconds: tenths(boot.seconds),
    milestones: boot.milestones.map((m) => ({ ...m, at: tenths(m.at) })),
    // The console's diagnosis only: Secure Boot off is the verdict's own (failureReason() words it).
    diagnosis: verdict.diagnosis,
    serialLog: boot.serialLog,
  }
}
