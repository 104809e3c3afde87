// A script run with apt and dpkg inside an unpacked image tree, the way both the build
// (mmdebstrap's customize step, customize-script.ts) and the conversion (kernel-swap.ts)
// need it: a chroot in a private mount namespace (unshare, so nothing is left mounted on
// the host) with the host's /proc and /dev bound in, the host's resolver for apt, no
// service started (policy-rc.d answers 101), and GRUB's probes answered by the build's
// stand-in grub-probe for the image's root UUID, diverted in before the script and out
// again after it, whether the script succeeded or not. The tree's own resolv.conf and
// policy-rc.d are put back afterwards.

import { chmod, copyFile, lstat, mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { quoteArgv, run } from '../tools/run.js'
import { fakeGrubProbe, grubProbeDivertIn, grubProbeDivertOut } from './customize-script.js'

const PROBE_DIR = '/usr/local/lib/hwimage-chroot'
const PROBE = `${PROBE_DIR}/grub-probe`
const SCRIPT = '/root/hwimage-chroot.sh'
const WRAPPER = '/root/hwimage-chroot-wrapper.sh'

/** The wrapper run in the chroot: probe in, the script (sh -e), probe out, the script's status. */
export function chrootWrapperScript(): string {
  return (
    [
      ...grubProbeDivertIn(PROBE).map((l) => quoteArgv(l)),
      'rc=0',
      `${quoteArgv(['sh', '-e', SCRIPT])} || rc=$?`,
      ...grubProbeDivertOut().map((l) => quoteArgv(l)),
      'exit $rc',
    ].join('\n') + '\n'
  )
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  )
}

/** Runs `script` with `sh -e` in a chroot of `rootDir` (see the file comment); throws if it fails. */
export async function runInTreeChroot(
  rootDir: string,
  script: string,
  opts: { rootUuid: string; signal?: AbortSignal; verbose?: boolean; env?: Record<string, string> },
): Promise<{ stdout: string }> {
  const resolv = join(rootDir, 'etc/resolv.conf')
  const resolvSaved = join(rootDir, 'etc/resolv.conf.hwimage-chroot')
  const hadResolv = await exists(resolv)
  if (hadResolv) await rename(resolv, resolvSaved)
  // No service starts in the chroot (invoke-rc.d asks policy-rc.d; 101: action not allowed).
  const policy = join(rootDir, 'usr/sbin/policy-rc.d')
  const policySaved = join(rootDir, 'usr/sbin/policy-rc.d.hwimage-chroot')
  const hadPolicy = await exists(policy)
  try {
    await copyFile('/etc/resolv.conf', resolv)
    if (hadPolicy) await rename(policy, policySaved)
    await writeFile(policy, '#!/bin/sh\nexit 101\n')
    await chmod(policy, 0o755)
    await mkdir(join(rootDir, PROBE_DIR), { recursive: true })
    await writeFile(join(rootDir, PROBE), fakeGrubProbe({ rootUuid: opts.rootUuid, espVolumeId: '' }))
    await chmod(join(rootDir, PROBE), 0o755)
    await writeFile(join(rootDir, SCRIPT), script)
    await writeFile(join(rootDir, WRAPPER), chrootWrapperScript())
    const inner = quoteArgv(['chroot', rootDir, '/bin/sh', '-e', WRAPPER])
    const mounts = [
      quoteArgv(['mount', '--make-rprivate', '/']),
      quoteArgv(['mount', '-t', 'proc', 'proc', join(rootDir, 'proc')]),
      quoteArgv(['mount', '--rbind', '/dev', join(rootDir, 'dev')]),
    ].join(' && ')
    const r = await run(['unshare', '--mount', '--fork', '--', 'sh', '-ec', `${mounts} && ${inner}`], {
      ...(opts.signal ? { signal: opts.signal } : {}),
      inheritStderr: opts.verbose ?? false,
      env: { LC_ALL: 'C.UTF-8', ...opts.env },
    })
    return { stdout: r.stdout }
  } finally {
    await rm(join(rootDir, SCRIPT), { force: true })
    await rm(join(rootDir, WRAPPER), { force: true })
    await rm(join(rootDir, PROBE_DIR), { recursive: true, force: true })
    await rm(policy, { force: true })
    if (hadPolicy) await rename(policySaved, policy)
    await rm(resolv, { force: true })
    if (hadResolv) await rename(resolvSaved, resolv)
  }
}
