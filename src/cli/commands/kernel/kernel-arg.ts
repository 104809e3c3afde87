// The KERNEL argument every `hwimage kernel` sub-verb takes, and its help text.

import { UsageError } from '../../../errors.js'

/** The help paragraph on KERNEL, shared by the sub-verbs. */
export const KERNEL_ARG = `KERNEL is a linux-image .deb, apt:PACKAGE (downloaded with apt-get into
$HWIMAGE_CACHE_DIR, default /var/cache/hwimage), an image root, or a
lib/modules/<version> directory.`

/** The one positional argument, KERNEL; a UsageError when it is missing or followed by another. */
export function kernelSource(positionals: string[], verb: string): string {
  if (positionals.length === 0)
    throw new UsageError(`Cannot run "${verb}": KERNEL is missing`, { hint: `see \`hwimage ${verb} --help\`` })
  if (positionals.length > 1) throw new UsageError(`Cannot run "${verb}": unexpected argument "${positionals[1]}"`)
  return positionals[0]!
}
