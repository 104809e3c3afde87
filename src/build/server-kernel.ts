// The `server` kernel flavor in an image tree: Debian's generic kernel with its
// module tree cut to the server set (src/kernel/server-policy.ts plus the spec's
// additions and removals), compressed with xz (kmod loads .ko.xz; the appended
// signatures stay valid, so Secure Boot lockdown still loads them), depmod run,
// and the initramfs made again so it carries every storage driver that is left.
// A kernel upgrade through apt keeps the cut: a postinst.d hook prunes the new
// kernel's tree to the same list before its initramfs is made.

import { mkdir, writeFile, chmod } from 'node:fs/promises'
import { join } from 'node:path'
import { openKernel } from '../kernel/kernel-package.js'
import { selectServerModules, type ServerModuleSelection } from '../kernel/server-modules.js'
import { pruneModuleTree } from '../kernel/module-prune.js'
import { SERVER_POLICY } from '../kernel/server-policy.js'
import { run } from '../tools/run.js'

/** Where the image keeps the module list its upgrade hook prunes to. */
export const SERVER_MODULES_LIST = '/etc/hwimage/server-modules.list'
const UPGRADE_HOOK = '/etc/kernel/postinst.d/a0-hwimage-server-modules'

/** What applying the flavor did. */
export interface ServerKernelResult {
  selection: ServerModuleSelection
  version: string
}

/** Cuts the tree's kernel to the server set, regenerates its initramfs, installs the upgrade hook. */
export async function applyServerKernel(
  rootDir: string,
  extras: { add: string[]; remove: string[] },
  opts: {
    signal?: AbortSignal /** SOURCE_DATE_EPOCH for mkinitramfs (sorted, clamped cpio). */
    sourceDateEpoch?: number
  } = {},
): Promise<ServerKernelResult> {
  const tree = await openKernel(rootDir, { signal: opts.signal })
  const selection = await selectServerModules(tree, SERVER_POLICY, extras, { imageRoot: rootDir, signal: opts.signal })
  await pruneModuleTree(rootDir, tree.version, new Set(selection.modules), { compression: 'xz', signal: opts.signal })
  await writeUpgradeHook(rootDir, selection.modules)
  // MODULES=most: the initramfs takes every block and storage driver still present.
  await run(['chroot', rootDir, 'update-initramfs', '-u', '-k', tree.version], {
    signal: opts.signal,
    ...(opts.sourceDateEpoch === undefined ? {} : { env: { SOURCE_DATE_EPOCH: String(opts.sourceDateEpoch) } }),
  })
  return { selection, version: tree.version }
}

/** The postinst.d hook that prunes a newly installed kernel to the same module list. */
export function upgradeHookScript(): string {
  return `#!/bin/sh
# hwimage "server" kernel flavor: a new linux-image package brings Debian's full
# module tree; keep only the modules in ${SERVER_MODULES_LIST} before the
# initramfs-tools hook (which sorts after this one) makes the new initramfs.
# Modules stay uncompressed here; their signatures are untouched either way.
set -e
version="$1"
list=${SERVER_MODULES_LIST}
dir="/lib/modules/$version/kernel"
[ -r "$list" ] && [ -d "$dir" ] || exit 0
find "$dir" -name '*.ko*' | while read -r f; do
  name=$(basename "$f"); name=\${name%%.ko*}
  grep -qx "$(echo "$name" | tr - _)" "$list" || rm -f "$f"
done
depmod "$version"
`
}

async function writeUpgradeHook(rootDir: string, modules: string[]): Promise<void> {
  await mkdir(join(rootDir, 'etc/hwimage'), { recursive: true })
  await writeFile(join(rootDir, SERVER_MODULES_LIST), modules.map((m) => m.replaceAll('-', '_')).join('\n') + '\n')
  const hook = join(rootDir, UPGRADE_HOOK)
  await mkdir(join(rootDir, 'etc/kernel/postinst.d'), { recursive: true })
  await writeFile(hook, upgradeHookScript())
  await chmod(hook, 0o755)
}
