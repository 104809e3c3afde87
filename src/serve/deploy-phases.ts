// The phases of a machine's current deploy, dated from what serve recorded (pure):
//
//   networkBoot          serve answered the firmware's boot request (iPXE over HTTP), or —
//                        when the firmware booted by TFTP, which serve does not see — the
//                        deploy environment's kernel start (inventory time − its uptime)
//   deployEnvironmentUp  the deploy environment's inventory arrived
//   installStarted       its first progress report (after an operator's assignment, if it waited)
//   installed            the install report arrived (state "installed")
//   firstBoot            the installed system's kernel start (its first-boot report's time − uptime)
//   reported             the first-boot report arrived (state "deployed")
//
// "Current deploy": the events since the last redeploy. Seconds are between consecutive
// known milestones; a missing milestone leaves its phases out rather than guessing.

import type { MachineEvent, MachineRecord } from './state/store.js'

/** When each milestone happened (ISO 8601), when known. */
export interface DeployMilestones {
  networkBoot?: string
  deployEnvironmentUp?: string
  installStarted?: string
  installed?: string
  firstBoot?: string
  reported?: string
}

/** The milestones and the seconds of each phase between them. */
export interface DeployPhases {
  at: DeployMilestones
  seconds: {
    /** networkBoot → deployEnvironmentUp: firmware, kernel, modules, DHCP, inventory. */
    deployEnvironmentBoot?: number
    /** deployEnvironmentUp → installStarted: the pre-flight check, or an operator's assignment. */
    waitForAssignment?: number
    /** installStarted → installed: download, write, verify. */
    install?: number
    /** installed → firstBoot: reboot, firmware, the installed system's boot loader. */
    reboot?: number
    /** firstBoot → reported: the installed system up to cloud-init's final stage and its report. */
    firstBoot?: number
    /** networkBoot → reported. */
    total?: number
  }
}

/** The phases of `m`'s current deploy from its events (oldest first). */
export function deployPhases(m: Pick<MachineRecord, 'firstBootReport'>, events: readonly MachineEvent[]): DeployPhases {
  let lastRedeploy = -1
  events.forEach((e, i) => {
    if (e.kind === 'redeploy') lastRedeploy = i
  })
  const current = events.slice(lastRedeploy + 1)
  const first = (pred: (e: MachineEvent) => boolean) => current.find(pred)
  const last = (pred: (e: MachineEvent) => boolean, before?: string) =>
    current.filter((e) => pred(e) && (before === undefined || e.time <= before)).at(-1)

  const installStarted = first((e) => e.kind === 'stage')?.time
  // The inventory the install followed (a machine may have sent several while waiting).
  const inventory = last((e) => e.kind === 'inventory', installStarted)
  const deployEnvironmentUp = inventory?.time
  const uptime = typeof inventory?.fields.uptimeSeconds === 'number' ? inventory.fields.uptimeSeconds : undefined
  const bootAnswer = deployEnvironmentUp ? last((e) => e.kind === 'boot', deployEnvironmentUp) : undefined
  const networkBoot =
    bootAnswer?.time ?? (deployEnvironmentUp && uptime !== undefined ? shift(deployEnvironmentUp, -uptime) : undefined)
  const installed = first((e) => e.kind === 'installed')?.time
  const reported = first((e) => e.kind === 'first-boot')?.time
  const report = m.firstBootReport as { time?: unknown; uptime_seconds?: unknown } | null
  const firstBoot =
    reported && report && typeof report.time === 'string' && typeof report.uptime_seconds === 'number'
      ? shift(report.time, -report.uptime_seconds)
      : undefined

  const at: DeployMilestones = {
    ...(networkBoot ? { networkBoot } : {}),
    ...(deployEnvironmentUp ? { deployEnvironmentUp } : {}),
    ...(installStarted ? { installStarted } : {}),
    ...(installed ? { installed } : {}),
    ...(firstBoot ? { firstBoot } : {}),
    ...(reported ? { reported } : {}),
  }
  const between = (a?: string, b?: string) =>
    a && b ? Math.round((Date.parse(b) - Date.parse(a)) / 100) / 10 : undefined
  const seconds: DeployPhases['seconds'] = {}
  const put = (k: keyof DeployPhases['seconds'], v: number | undefined) => {
    if (v !== undefined) seconds[k] = v
  }
  put('deployEnvironmentBoot', between(networkBoot, deployEnvironmentUp))
  put('waitForAssignment', between(deployEnvironmentUp, installStarted))
  put('install', between(installStarted, installed))
  put('reboot', between(installed, firstBoot))
  put('firstBoot', between(firstBoot, reported))
  put('total', between(networkBoot, reported))
  return { at, seconds }
}

function shift(iso: string, seconds: number): string | undefined {
  const t = Date.parse(iso)
  return Number.isFinite(t) ? new Date(t + seconds * 1000).toISOString() : undefined
}
