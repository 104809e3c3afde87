// The `server` kernel flavor in an image tree: Debian's generic kernel with its
// module tree cut to the server set (src/kernel/server-policy.ts plus the spec's
// additions and removals), compressed with xz (kmod loads .ko.xz; the appended
// signatures stay valid, so Secure Boot lockdown still loads them), depmod run,
// and the initramfs made again so it carries every storage driver that is left.
// A kernel upgrade or reinstall through apt keeps the cut: a postinst.d hook prunes
// the new kernel's tree to the same list and compresses it the same way before its
// initramfs is made; a postrm.d hook deletes a removed kernel's compressed modules.

import { mkdir, writeFile, chmod } from 'node:fs/promises'
import { join } from 'node:path'
import { openKernel } from '../kernel/kernel-package.js'
import { selectServerModules, type ServerModuleSelection } from '../kernel/server-modules.js'
import { pruneModuleTree } from '../kernel/module-prune.js'
import { SERVER_POLICY } from '../kernel/server-policy.js'
import { quoteArgv, run } from '../tools/run.js'
import { compressArgv } from '../kernel/kernel-tool-argv.js'

/** Where the image keeps the module list its upgrade hook prunes to. */
export const SERVER_MODULES_LIST = '/etc/hwimage/server-modules.list'
const UPGRADE_HOOK = '/etc/kernel/postinst.d/a0-hwimage-server-modules'
const REMOVE_HOOK = '/etc/kernel/postrm.d/a0-hwimage-server-modules'

/** Packages the server flavor needs in the image besides the kernel: xz for the upgrade hook. */
export const SERVER_FLAVOR_PACKAGES = ['xz-utils'] as const

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

/**
 * The postinst.d hook that cuts a newly installed or reinstalled kernel to the same module
 * list, the way applyServerKernel() does: dpkg unpacks Debian's full tree of uncompressed
 * .ko files beside whatever .ko.xz the build or an earlier run left, so every module not
 * in the list goes (in any compression), every kept .ko is compressed with the build's own
 * xz argv (replacing a stale .ko.xz), modules.order is cut to match and depmod runs; the
 * initramfs-tools hook, which sorts after this one, then makes the initramfs from that
 * tree. One pass: awk reads the list once and sorts every module file into "delete" or
 * "compress" (the first version ran grep once per module: minutes under emulation).
 */
export function upgradeHookScript(): string {
  const xz = quoteArgv(compressArgv('xz', []).filter((a) => a !== '--'))
  return `#!/bin/sh
# hwimage "server" kernel flavor: a new linux-image package brings Debian's full module
# tree; keep only the modules in ${SERVER_MODULES_LIST}, compressed with xz as the image
# was built, before the initramfs-tools hook (which sorts after this one) makes the
# new initramfs. The appended signatures stay valid inside the xz stream.
set -e
version="$1"
list=${SERVER_MODULES_LIST}
dir="/lib/modules/$version"
[ -r "$list" ] && [ -d "$dir/kernel" ] || exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
find "$dir/kernel" -type f -name '*.ko*' | awk -v list="$list" -v del="$tmp/delete" -v xz="$tmp/compress" '
  BEGIN { while ((getline name < list) > 0) keep[name] = 1; printf "" > del; printf "" > xz }
  { n = $0; sub(/.*\\//, "", n); sub(/\\.ko(\\.(xz|zst|gz))?$/, "", n); gsub(/-/, "_", n)
    if (!(n in keep)) print > del; else if ($0 ~ /\\.ko$/) print > xz }'
xargs -r rm -f < "$tmp/delete"
xargs -r -n 32 -P "$(nproc)" ${xz} -- < "$tmp/compress"
find "$dir/kernel" -type d -empty -delete
if [ -f "$dir/modules.order" ]; then
  awk -v list="$list" 'BEGIN { while ((getline name < list) > 0) keep[name] = 1 }
    { n = $0; sub(/.*\\//, "", n); sub(/\\.ko(\\.(xz|zst|gz))?$/, "", n); gsub(/-/, "_", n); if (n in keep) print }' \\
    "$dir/modules.order" > "$tmp/order"
  cat "$tmp/order" > "$dir/modules.order"
fi
depmod "$version"
`
}

/**
 * The postrm.d hook: when a kernel package is removed or purged, dpkg deletes the .ko
 * files it owns (the upgrade hook already replaced them) and leaves the .ko.xz it does
 * not know; this deletes those, so an old kernel's tree goes with its package.
 */
export function removeHookScript(): string {
  return `#!/bin/sh
# hwimage "server" kernel flavor: the compressed modules of a removed kernel package
# are not dpkg's files; delete them with the package.
set -e
version="$1"
dir="/lib/modules/$version/kernel"
case " $DEB_MAINT_PARAMS" in
  *" remove"*|*" purge"*) ;;
  *) exit 0 ;;
esac
[ -d "$dir" ] || exit 0
find "$dir" -type f -name '*.ko.xz' -delete
find "$dir" -depth -type d -empty -delete
`
}

async function writeUpgradeHook(rootDir: string, modules: string[]): Promise<void> {
  await mkdir(join(rootDir, 'etc/hwimage'), { recursive: true })
  await writeFile(join(rootDir, SERVER_MODULES_LIST), modules.map((m) => m.replaceAll('-', '_')).join('\n') + '\n')
  const hook = join(rootDir, UPGRADE_HOOK)
  await mkdir(join(rootDir, 'etc/kernel/postinst.d'), { recursive: true })
  await writeFile(hook, upgradeHookScript())
  await chmod(hook, 0o755)
  const remove = join(rootDir, REMOVE_HOOK)
  await mkdir(join(rootDir, 'etc/kernel/postrm.d'), { recursive: true })
  await writeFile(remove, removeHookScript())
  await chmod(remove, 0o755)
}
