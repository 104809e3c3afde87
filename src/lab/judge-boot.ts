// The verdict on one boot, read from its console: whether it passed and, if not, why.
// One judge for both verbs: `hwimage boot` passes at cloud-init's final stage, a lab
// cell (`hwimage test`) when its first-boot report arrived; on uefi-sb both also need
// the kernel to report Secure Boot enabled (a shim or kernel that booted with
// verification off proves nothing about Secure Boot).

import type { Firmware } from '../tools/qemu.js'
import { watchConsole, type ConsoleFacts, type ConsoleWatcher, type Milestone } from './console-watch.js'
import { diagnoseBoot, type BootContext, type Diagnosis } from './diagnose.js'

/** What the judge knows besides the console: the firmware and how the boot ended. */
export interface JudgeContext extends BootContext {
  firmware: Firmware
}

/** What the console proved. */
export interface Verdict {
  pass: boolean
  /** Where the console shows the boot stopped; null when it shows no failure. */
  diagnosis: Diagnosis | null
  /** uefi-sb, the console otherwise fine: the kernel does not report Secure Boot enabled. */
  secureBootOff: Diagnosis | null
  /** cloud-init's final stage, when the console showed it. */
  finalStage: Milestone | undefined
}

/** Judges a boot from its console log (text or the watcher that followed it). */
export function judgeBoot(log: string | ConsoleWatcher, ctx: JudgeContext): Verdict {
  const w = typeof log === 'string' ? watchConsole(log) : log
  const diagnosis = diagnoseBoot(w, ctx)
  const shortfall = diagnosis === null ? secureBootShortfall(ctx.firmware, w.facts.secureBoot) : null
  const evidence = w.get('secure-boot')?.line
  const secureBootOff: Diagnosis | null =
    shortfall === null
      ? null
      : { code: 'secure-boot-off', summary: `The ${shortfall}`, ...(evidence ? { evidence } : {}) }
  const finalStage = w.get('cloud-init-final')
  // diagnoseBoot already weighs a cell's report; a single boot also needs the final stage.
  const pass = diagnosis === null && secureBootOff === null && (ctx.needReport === true || finalStage !== undefined)
  return { pass, diagnosis, secureBootOff, finalStage }
}

/** Why a boot failed, in one line: its diagnosis, else Secure Boot off, else no final stage. */
export function failureReason(r: {
  firmware: Firmware
  secureBoot: ConsoleFacts['secureBoot'] | null
  finalStage: boolean
  diagnosis: Diagnosis | null
}): string {
  if (r.diagnosis) return `${r.diagnosis.summary}${r.diagnosis.evidence ? ` — "${r.diagnosis.evidence}"` : ''}`
  const shortfall = secureBootShortfall(r.firmware, r.secureBoot ?? undefined)
  if (shortfall) return `the ${shortfall}`
  return r.finalStage ? 'unknown' : "cloud-init's final stage was not reached"
}

// On uefi-sb only "enabled" will do; other firmware needs no Secure Boot report.
function secureBootShortfall(firmware: Firmware, report: ConsoleFacts['secureBoot']): string | null {
  if (firmware !== 'uefi-sb' || report === 'enabled') return null
  return `kernel does not report Secure Boot enabled (${report ?? 'no report'})`
}
