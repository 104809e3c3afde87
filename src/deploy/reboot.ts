// Rebooting the deploy environment once the disk is installed. The initramfs has no init
// system to stop services: busybox `reboot -f` calls sync() and then reboot(2)
// (RB_AUTOBOOT) directly — an orderly enough end for a RAM-only system whose one disk
// write (the installer's) was already fsynced and read back. The magic SysRq "b"
// (Documentation/admin-guide/sysrq.rst) is the fallback only: it reboots without syncing
// and depends on kernel.sysrq allowing it (Debian's default 438 does), so it is used when
// `reboot` itself is missing or fails.

import { writeFile } from 'node:fs/promises'
import { run } from '../tools/run.js'

/** argv of the reboot. */
export function rebootArgv(): string[] {
  return ['reboot', '-f']
}

/** Reboots now; returns only if both ways failed (throws the reason). */
export async function rebootNow(): Promise<void> {
  try {
    await run(rebootArgv())
  } catch (e) {
    try {
      await writeFile('/proc/sysrq-trigger', 'b')
    } catch (e2) {
      throw new Error(`Cannot reboot: ${(e as Error).message}; /proc/sysrq-trigger: ${(e2 as Error).message}`)
    }
  }
  // reboot(2) does not return; give the kernel a moment before reporting that it did.
  await new Promise((r) => setTimeout(r, 10_000).unref())
  throw new Error('Cannot reboot: the machine is still running 10 s after reboot -f')
}
