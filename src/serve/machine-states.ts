// A machine's life in serve, as a pure transition table (network deploy issue):
//
//   new ──inventory (no image)──▶ enlisted ──assign──▶ deploying ──installed──▶ installed ──first boot──▶ deployed
//    └──boot or inventory with an image assigned──────▶ deploying ──failed────▶ failed ──redeploy/assign──▶ deploying
//
// "redeploy" sends any machine with an image back to deploying (and revokes its tokens).

/** Every state a machine can be in. */
export const MACHINE_STATES = ['new', 'enlisted', 'deploying', 'installed', 'deployed', 'failed'] as const
export type MachineState = (typeof MACHINE_STATES)[number]

/** What happens to a machine. */
export type MachineAction = 'boot' | 'inventory' | 'assign' | 'redeploy' | 'installed' | 'failed' | 'first-boot'

/** The next state, or undefined when the action is not allowed in this state (a 409 on the API). */
export function nextState(state: MachineState, action: MachineAction, hasImage: boolean): MachineState | undefined {
  switch (action) {
    case 'boot':
      if (state === 'new') return hasImage ? 'deploying' : 'new'
      return state
    case 'inventory':
      if (state === 'new') return hasImage ? 'deploying' : 'enlisted'
      if (state === 'enlisted' || state === 'deploying' || state === 'failed') return state
      return undefined
    case 'assign':
      if (state === 'new') return 'new'
      if (state === 'enlisted' || state === 'failed' || state === 'deploying') return 'deploying'
      return undefined
    case 'redeploy':
      return hasImage ? 'deploying' : undefined
    case 'installed':
      return state === 'deploying' || state === 'installed' ? 'installed' : undefined
    case 'failed':
      return state === 'installed' || state === 'deployed' ? undefined : 'failed'
    case 'first-boot':
      return state === 'installed' || state === 'deployed' ? 'deployed' : undefined
  }
}

/** Whether the machine boots the deploy environment (else: its local disk). */
export function bootsDeployEnvironment(state: MachineState): boolean {
  return state !== 'installed' && state !== 'deployed'
}
