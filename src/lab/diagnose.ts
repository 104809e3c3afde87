// Where a boot stopped, read from its serial console: the firmware found no boot
// entry, the bootloader failed, the kernel panicked, the initramfs gave up waiting
// for the root device (a missing storage driver), the machine booted but had no
// network (a missing NIC driver), cloud-init failed, or it simply ran out of time.

import { watchConsole, type ConsoleWatcher, type Milestone, type MilestoneKind } from './console-watch.js'

/** Why a boot failed, from the furthest point its console shows. */
export type DiagnosisCode =
  | 'no-boot-entry'
  | 'bootloader-failed'
  | 'kernel-panic'
  | 'root-device-missing'
  | 'no-network'
  | 'cloud-init-error'
  /** uefi-sb only: the machine booted but the kernel does not report Secure Boot enabled */
  | 'secure-boot-off'
  | 'qemu-failed'
  | 'timeout'

/** A failed boot's diagnosis: a code, one sentence, and the console line that shows it. */
export interface Diagnosis {
  code: DiagnosisCode
  summary: string
  /** The console line the diagnosis rests on, when there is one. */
  evidence?: string
  /** The furthest milestone the boot reached. */
  reached?: MilestoneKind
}

/** What else is known about the boot besides its console. */
export interface BootContext {
  /** The boot ran out of time (rather than QEMU exiting or the caller stopping it). */
  timedOut: boolean
  /** QEMU exited by itself, with this status and stderr. */
  qemuExit?: { status: number | null; signal: string | null; stderr: string }
  /** The cell needs a report over the network to pass. */
  needReport?: boolean
  reportReceived?: boolean
}

/** Diagnoses a boot from its console log; null when the console shows no failure for this context. */
export function diagnoseBoot(log: string | ConsoleWatcher, ctx: BootContext): Diagnosis | null {
  const w = typeof log === 'string' ? watchConsole(log) : log
  const reached = w.last()?.kind
  const d = (code: DiagnosisCode, summary: string, m?: Milestone): Diagnosis => ({
    code,
    summary,
    ...(m ? { evidence: m.line } : {}),
    ...(reached ? { reached } : {}),
  })
  const has = (k: MilestoneKind) => w.has(k)
  const final = has('cloud-init-final')
  // DataSourceNone: cloud-init found no seed and ran with nothing (its fallback).
  const noSeed = /^DataSourceNone\b/.test(w.facts.datasource ?? '')
  if (ctx.needReport ? ctx.reportReceived : final && !noSeed) return null

  if (has('root-missing'))
    return d(
      'root-device-missing',
      'The initramfs gave up waiting for the root device: no disk with the root file system appeared (no driver for the storage controller, or its driver found no disks)',
      w.get('root-missing'),
    )
  if (has('panic')) return d('kernel-panic', 'The kernel panicked', w.get('panic'))
  if (!has('kernel')) {
    const blErr = w.get('bootloader-error')
    if (blErr) {
      const sb = /BdsDxe: failed to .*(?:Access Denied|Security Violation)|Verification failed/.test(blErr.line)
      return d(
        'bootloader-failed',
        sb
          ? 'The firmware refused to start the bootloader: Secure Boot verification failed'
          : 'The bootloader failed before starting the kernel',
        blErr,
      )
    }
    if (has('no-boot-entry') && !has('bootloader'))
      return d(
        'no-boot-entry',
        'The firmware found no boot entry on the disk (no firmware driver for the controller, or no bootable partition)',
        w.get('no-boot-entry'),
      )
    if (ctx.qemuExit) return qemuFailed(ctx, reached)
    if (has('bootloader'))
      return d('bootloader-failed', 'The bootloader started but never started a kernel', w.get('bootloader'))
    return d(
      'timeout',
      has('firmware')
        ? 'Timed out in the firmware: nothing booted from the disk'
        : 'Timed out with no output from the firmware',
    )
  }
  // cloud-init lists the interfaces it found ("Net device info"): only loopback
  // there means the kernel has no driver for the NIC.
  if (w.facts.interfaces.length === 0 && (w.facts.netInfoSeen || final)) {
    return d(
      'no-network',
      'The machine booted but no network interface came up: the kernel has no driver for the NIC (or DHCP failed)',
      w.get('cloud-init-local') ?? w.get('systemd'),
    )
  }
  if (has('cloud-init-error'))
    return d(
      'cloud-init-error',
      noSeed ? 'cloud-init found no seed (DataSourceNone)' : 'cloud-init reported an error',
      w.get('cloud-init-error'),
    )
  if (final) {
    return d(
      'no-network',
      `cloud-init finished but its report never arrived over the network (interfaces up: ${w.facts.interfaces.join(', ')})`,
      w.get('cloud-init-final'),
    )
  }
  if (ctx.qemuExit) return qemuFailed(ctx, reached)
  if (!ctx.timedOut) return null
  return d('timeout', `Timed out after the boot reached "${reached}" without cloud-init's final stage`, w.last())
}

function qemuFailed(ctx: BootContext, reached: MilestoneKind | undefined): Diagnosis {
  const e = ctx.qemuExit!
  const last = e.stderr.trim().split('\n').filter(Boolean).pop()
  const how = e.signal ? `killed by ${e.signal}` : `exit status ${e.status}`
  return {
    code: 'qemu-failed',
    summary: `QEMU stopped by itself (${how})`,
    ...(last ? { evidence: last } : {}),
    ...(reached ? { reached } : {}),
  }
}
