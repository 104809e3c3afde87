// A synthetic sysfs + procfs tree for inventory tests, laid out as the kernel lays
// them out: devices under devices/, bus/pci/devices and block/ and class/net as
// relative symlinks into it, `driver` links into bus/*/drivers.

import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** A tree being built: write files and relative symlinks below `root`. */
export class SysfsFixture {
  private constructor(readonly root: string) {}

  /** A fresh empty tree in a temporary directory. */
  static async create(): Promise<SysfsFixture> {
    return new SysfsFixture(await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-sysfs-')))
  }

  /** Writes `files` (relative name → content, a trailing newline added to strings) under `dir`. */
  async write(dir: string, files: Record<string, string | Uint8Array>): Promise<void> {
    for (const [name, content] of Object.entries(files)) {
      const p = path.join(this.root, dir, name)
      await fsp.mkdir(path.dirname(p), { recursive: true })
      await fsp.writeFile(p, typeof content === 'string' ? `${content}\n` : content)
    }
  }

  /** Makes `link` a relative symlink to `target` (both relative to the root). */
  async link(link: string, target: string): Promise<void> {
    const p = path.join(this.root, link)
    await fsp.mkdir(path.dirname(p), { recursive: true })
    await fsp.mkdir(path.join(this.root, target), { recursive: true }).catch(() => undefined)
    await fsp.symlink(path.relative(path.dirname(p), path.join(this.root, target)), p)
  }

  /** A PCI function at devices/pci0000:00/ADDRESS, listed in bus/pci/devices, with its driver link. */
  async pci(
    address: string,
    ids: { vendor: string; device: string; sv: string; sd: string; class: string; driver?: string },
    under = 'devices/pci0000:00',
  ): Promise<string> {
    const dir = `${under}/${address}`
    const bc = ids.class.slice(0, 2)
    const sc = ids.class.slice(2, 4)
    const pi = ids.class.slice(4, 6)
    const up = (s: string) => s.toUpperCase().padStart(8, '0')
    await this.write(dir, {
      vendor: `0x${ids.vendor}`,
      device: `0x${ids.device}`,
      subsystem_vendor: `0x${ids.sv}`,
      subsystem_device: `0x${ids.sd}`,
      class: `0x${ids.class}`,
      modalias: `pci:v${up(ids.vendor)}d${up(ids.device)}sv${up(ids.sv)}sd${up(ids.sd)}bc${bc.toUpperCase()}sc${sc.toUpperCase()}i${pi.toUpperCase()}`,
    })
    await this.link(`bus/pci/devices/${address}`, dir)
    if (ids.driver) await this.link(`${dir}/driver`, `bus/pci/drivers/${ids.driver}`)
    return dir
  }

  /** Removes the tree. */
  async remove(): Promise<void> {
    await fsp.rm(this.root, { recursive: true, force: true })
  }
}
