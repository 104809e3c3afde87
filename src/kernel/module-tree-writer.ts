// Writes a reduced kernel for measuring or installing: boot/vmlinuz-<version> and
// lib/modules/<version> holding only a module set, compressed, with depmod's
// indexes; then checks the written tree with depmod -e for unresolved symbols.

import fs from 'node:fs/promises'
import path from 'node:path'
import { InputError } from '../errors.js'
import type { KernelTree } from './kernel-package.js'
import { openKernel } from './kernel-package.js'
import { findUnresolvedSymbols, kernelSystemMap, type UnresolvedSymbol } from './kernel-symbols.js'
import type { ModuleCompression } from './kernel-tool-argv.js'
import { pruneModuleTree, type PruneResult } from './module-prune.js'

/** What writeModuleTree() made. */
export interface WrittenTree {
  root: string
  prune: PruneResult
  /** depmod -e over the written tree (compressed modules): empty when every symbol resolves. */
  unresolved: UnresolvedSymbol[]
}

const INDEXES_TO_COPY = ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']

/** Copies vmlinuz and the modules in `keep` under outDir, compresses them, runs depmod, checks symbols. */
export async function writeModuleTree(
  tree: KernelTree,
  keep: ReadonlySet<string>,
  outDir: string,
  opts: {
    compression?: ModuleCompression
    signal?: AbortSignal
    onProgress?: (p: { stage: string; done: number; total?: number }) => void
  } = {},
): Promise<WrittenTree> {
  const root = path.resolve(outDir)
  const modulesDir = path.join(root, 'lib', 'modules', tree.version)
  if (
    await fs.access(modulesDir).then(
      () => true,
      () => false,
    )
  ) {
    throw new InputError('SPEC_INVALID', `Cannot write kernel tree: ${modulesDir} already exists`, {
      hint: 'give an empty or new --output directory',
    })
  }
  await fs.mkdir(modulesDir, { recursive: true })
  if (tree.vmlinuzPath) {
    await fs.mkdir(path.join(root, 'boot'), { recursive: true })
    await fs.copyFile(tree.vmlinuzPath, path.join(root, 'boot', path.basename(tree.vmlinuzPath)))
  }
  let done = 0
  for (const name of keep) {
    const m = tree.modules.get(name)
    if (!m) continue
    const to = path.join(modulesDir, m.path)
    await fs.mkdir(path.dirname(to), { recursive: true })
    await fs.copyFile(path.join(tree.modulesDir, m.path), to, fs.constants.COPYFILE_FICLONE)
    opts.onProgress?.({ stage: 'copy', done: ++done, total: keep.size })
  }
  for (const index of INDEXES_TO_COPY) {
    await fs.copyFile(path.join(tree.modulesDir, index), path.join(modulesDir, index)).catch(() => {})
  }
  const prune = await pruneModuleTree(root, tree.version, keep, {
    compression: opts.compression,
    signal: opts.signal,
    onProgress: opts.onProgress,
  })
  const written = await openKernel(root, { signal: opts.signal })
  const unresolved = await findUnresolvedSymbols(written, written.modules.keys(), {
    signal: opts.signal,
    systemMap: await kernelSystemMap(tree, { signal: opts.signal }),
  })
  return { root, prune, unresolved }
}
