// A module set named the way `kernel coverage --modules` names one: `all` (every
// module of the kernel), `server` (the server policy with a spec's changes), a file
// of module names (one a line, `#` comments), or name,name,… — closed under modules.dep.

import { readFile } from 'node:fs/promises'
import type { KernelTree } from './kernel-package.js'
import { moduleNameOf } from './module-indexes.js'
import { checkKnown, closeUnderDependencies, resolveModuleSet, type ModuleExtras } from './module-set.js'
import { SERVER_POLICY } from './server-policy.js'

/** The module set a name stands for; extras apply to `server` only. Throws MODULE_UNKNOWN for an unknown name. */
export async function namedModuleSet(tree: KernelTree, name: string, extras: ModuleExtras = {}): Promise<Set<string>> {
  if (name === 'all') return new Set(tree.modules.keys())
  if (name === 'server') return resolveModuleSet(tree, SERVER_POLICY, extras).modules
  const fromFile = await readFile(name, 'utf8').catch(() => undefined)
  const names = fromFile === undefined ? name.split(',') : fromFile.split('\n').map((l) => l.replace(/#.*/, ''))
  const wanted = names
    .map((n) => n.trim())
    .filter(Boolean)
    .map((n) => checkKnown(tree, moduleNameOf(n), 'measure'))
  return closeUnderDependencies(
    tree,
    wanted.filter((n) => tree.modules.has(n)),
  )
}
