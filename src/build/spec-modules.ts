// The spec's kernel.modules.add and .remove checked against the kernel package the
// image will get, before the root tree is built: an unknown name used to surface only
// after mmdebstrap, minutes in, when the server cut ran (server-kernel.ts). The package
// is the host apt's candidate for the flavor's metapackage (src/kernel/kernel-fetch.ts,
// downloaded and unpacked once into the kernel cache), which is the kernel mmdebstrap
// installs when the host runs the spec's release; on another host the check is left to
// the server cut, which makes the same one.

import { readFile } from 'node:fs/promises'
import { HwimageError, InputError, withContext } from '../errors.js'
import { openKernel, type KernelTree } from '../kernel/kernel-package.js'
import { normaliseModuleName } from '../kernel/module-indexes.js'
import { checkKnown, resolveModuleSet } from '../kernel/module-set.js'
import { SERVER_POLICY } from '../kernel/server-policy.js'
import { FLAVORS, type BuildSpec } from './spec.js'

/** Checks every name of kernel.modules against a kernel: MODULE_UNKNOWN or SPEC_INVALID naming the field and the value. */
export function checkSpecModules(tree: KernelTree, modules: BuildSpec['kernel']['modules'], source = 'spec'): void {
  for (const key of ['add', 'remove'] as const) {
    for (const [i, raw] of modules[key].entries()) {
      const field = `kernel.modules.${key}[${i}]`
      try {
        checkKnown(tree, raw, key)
      } catch (e) {
        if (!(e instanceof HwimageError && e.code === 'MODULE_UNKNOWN')) throw e
        throw new InputError(
          'MODULE_UNKNOWN',
          `Invalid ${source}: field "${field}": kernel ${tree.version} has no module "${raw}"`,
          {
            hint: nearHint(tree, normaliseModuleName(raw)),
            cause: e,
          },
        )
      }
      if (key === 'remove' && !tree.modules.has(normaliseModuleName(raw))) {
        throw new InputError(
          'SPEC_INVALID',
          `Invalid ${source}: field "${field}": module "${raw}" is built into vmlinuz ${tree.version} and cannot be removed`,
          {
            hint: 'remove it from kernel.modules.remove',
          },
        )
      }
    }
  }
  // What only the whole set shows (removing a module an added one needs): the resolution the server cut runs.
  try {
    resolveModuleSet(tree, SERVER_POLICY, modules)
  } catch (e) {
    throw withContext(`Invalid ${source}: field "kernel.modules"`, e)
  }
}

// Names that contain the one asked for, or that it contains (a short name such as "ch"
// inside "no_such_mod" is no suggestion).
function nearHint(tree: KernelTree, name: string): string {
  const near = [...tree.modules.keys()]
    .filter((n) => n.includes(name) || (n.length >= 4 && name.includes(n)))
    .sort()
    .slice(0, 3)
  const list = "list the kernel's modules with `hwimage kernel analyze apt:linux-image-amd64 --json`"
  return near.length ? `did you mean ${near.map((n) => `"${n}"`).join(', ')}? Or ${list}` : list
}

/** How the early check went. */
export type EarlyModuleCheck = { checked: true; kernel: string } | { checked: false; reason: string }

/**
 * Fetches the flavor's kernel package and checks the spec's module names, when the
 * spec changes the server set. Only a bad name throws; a package that cannot be had
 * here (another host release, no apt, no network) skips the check, with the reason.
 */
export async function checkSpecModulesEarly(
  spec: Pick<BuildSpec, 'release' | 'kernel'>,
  opts: { source?: string; cacheDir?: string; hostRelease?: string | null; signal?: AbortSignal } = {},
): Promise<EarlyModuleCheck> {
  const { add, remove } = spec.kernel.modules
  if (spec.kernel.flavor !== 'server' || (add.length === 0 && remove.length === 0))
    return { checked: false, reason: 'the spec changes no modules' }
  const host = opts.hostRelease !== undefined ? opts.hostRelease : await hostRelease()
  if (host !== spec.release) {
    return {
      checked: false,
      reason: `this host runs ${host ?? 'an unknown release'}, so its apt does not offer the ${spec.release} kernel; the names are checked after the root tree is built`,
    }
  }
  let tree: KernelTree
  try {
    tree = await openKernel(`apt:${FLAVORS[spec.kernel.flavor]}`, {
      ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    })
  } catch (e) {
    if (e instanceof HwimageError && e.code === 'INTERRUPTED') throw e
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e)
    return {
      checked: false,
      reason: `cannot fetch ${FLAVORS[spec.kernel.flavor]} here (${why}); the names are checked after the root tree is built`,
    }
  }
  checkSpecModules(tree, spec.kernel.modules, opts.source)
  return { checked: true, kernel: tree.version }
}

/** The host's Debian codename (/etc/os-release VERSION_CODENAME), or null. */
export async function hostRelease(): Promise<string | null> {
  const text = await readFile('/etc/os-release', 'utf8').catch(() => '')
  return /^VERSION_CODENAME="?([a-z]+)"?$/m.exec(text)?.[1] ?? null
}
