// `hwimage inventory [--json]`: this machine as the deploy environment reports it;
// `--check BUILD_DIR` runs the pre-flight hardware check of that image against it.

import { imageKernelFromTree, loadImageKernel } from '../../deploy/image-kernel.js'
import { collectInventory } from '../../deploy/inventory.js'
import type { Inventory } from '../../deploy/inventory-types.js'
import { preflight, type PreflightVerdict } from '../../deploy/preflight.js'
import { HwimageError, UsageError } from '../../errors.js'
import { openKernel } from '../../kernel/kernel-package.js'
import { parseVerbArgs, type Command } from '../command.js'
import { formatBytes } from '../../units.js'

const GENERIC = 'apt:linux-image-amd64'

const HELP = `Usage: hwimage inventory [--json]
       hwimage inventory --check BUILD_DIR [--disk /dev/sdX] [--json]

Prints this machine's inventory, read from /sys and /proc as the network deploy
environment reads it: PCI functions (vendor:device, class, bound driver), whole
disks (size, sector sizes, model, serial, WWN, rotational, removable, controller),
NICs (MAC, link, driver), firmware mode (bios, uefi, uefi-secureboot), CPUs, memory.

With --check, runs the pre-flight hardware check of an image against this machine:
the controller of the disk to install, and at least one NIC with a link, must have
a driver in the image's kernel (its manifest's modules and the modules.alias in its
root file system). On a refusal the message names the device, the module of Debian's
generic kernel that drives it, and the kernel flavor to build with.

Options:
      --json                 one JSON document on stdout (the inventory, or
                             { inventory, verdict } with --check)
      --check BUILD_DIR      a directory \`hwimage build -o\` wrote (manifest.json, NAME.img)
      --disk PATH            with --check: the disk to install (default: every fixed disk)
      --generic-kernel SRC   with --check: the kernel that names the driver a refused
                             device needs (default: ${GENERIC}, fetched only on a refusal)
      --sysfs DIR, --procfs DIR  read another tree instead of /sys and /proc
  -h, --help                 this help

Examples:
  hwimage inventory
  hwimage inventory --check out/ --disk /dev/nvme0n1

Exit codes: 0 ok, 1 the check refused the image, 2 usage or bad input.
`

/** \`hwimage inventory\`. */
export const inventoryCommand: Command = {
  name: 'inventory',
  help: HELP,
  async run(argv, ctx) {
    const args = parseVerbArgs(
      this,
      argv,
      {
        json: { type: 'boolean' },
        check: { type: 'string' },
        disk: { type: 'string' },
        'generic-kernel': { type: 'string' },
        sysfs: { type: 'string' },
        procfs: { type: 'string' },
      },
      ctx,
      false,
    )
    if (!args) return 0
    const v = args.values as Record<string, string | boolean | undefined>
    const check = v.check as string | undefined
    if (check === undefined && (v.disk !== undefined || v['generic-kernel'] !== undefined)) {
      throw new UsageError(`Cannot use --${v.disk !== undefined ? 'disk' : 'generic-kernel'} without --check`, {
        hint: 'hwimage inventory --check BUILD_DIR --disk /dev/sdX',
      })
    }
    const inventory = await collectInventory({
      ...(v.sysfs ? { sysfs: v.sysfs as string } : {}),
      ...(v.procfs ? { procfs: v.procfs as string } : {}),
    })
    if (check === undefined) {
      ctx.stdout.write(v.json ? JSON.stringify(inventory, null, 2) + '\n' : formatInventory(inventory))
      return 0
    }
    const kernel = await loadImageKernel(check, { signal: ctx.signal })
    const disk = v.disk as string | undefined
    let verdict = preflight(inventory, kernel, disk !== undefined ? { diskPath: disk } : {})
    if (!verdict.ok) {
      // Only a refusal needs the generic kernel: it names the module and flavor that would drive the device.
      const source = (v['generic-kernel'] as string | undefined) ?? GENERIC
      const generic = await openKernel(source, { signal: ctx.signal }).catch((e: unknown) => {
        if (e instanceof HwimageError && e.code === 'INTERRUPTED') throw e
        ctx.stderr.write(
          `warning: cannot read the generic kernel ${source} (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); the refusal names device classes only\n`,
        )
        return undefined
      })
      if (generic)
        verdict = preflight(inventory, kernel, {
          ...(disk !== undefined ? { diskPath: disk } : {}),
          generic: imageKernelFromTree(generic, 'generic'),
        })
    }
    ctx.stdout.write(v.json ? JSON.stringify({ inventory, verdict }, null, 2) + '\n' : formatVerdict(verdict, check))
    return verdict.ok ? 0 : 1
  },
}

/** The inventory as readable tables. */
export function formatInventory(inv: Inventory): string {
  const lines = [`firmware  ${inv.firmware}`, `cpus      ${inv.cpus}`, `memory    ${formatBytes(inv.memoryBytes)}`, '']
  lines.push(
    ...table(
      ['PCI', 'ID', 'SUBSYSTEM', 'CLASS', 'DRIVER'],
      inv.pci.map((p) => [
        p.address,
        `${p.vendor}:${p.device}`,
        p.subsystemVendor && p.subsystemDevice ? `${p.subsystemVendor}:${p.subsystemDevice}` : '-',
        p.class,
        p.driver ?? '-',
      ]),
    ),
    '',
  )
  lines.push(
    ...table(
      ['DISK', 'SIZE', 'SECTORS', 'MODEL', 'SERIAL', 'WWN', 'ROTA', 'RM', 'CONTROLLER'],
      inv.disks.map((d) => [
        d.path,
        formatBytes(d.sizeBytes),
        `${d.logicalSectorSize}/${d.physicalSectorSize}`,
        d.model ?? '-',
        d.serial ?? '-',
        d.wwn ?? '-',
        d.rotational ? 'yes' : 'no',
        d.removable ? 'yes' : 'no',
        d.controller ?? '-',
      ]),
    ),
    '',
  )
  lines.push(
    ...table(
      ['NIC', 'MAC', 'LINK', 'DRIVER', 'PCI'],
      inv.nics.map((n) => [n.name, n.mac, n.link ? 'up' : 'no', n.driver ?? '-', n.pci ?? '-']),
    ),
  )
  return lines.join('\n') + '\n'
}

/** A verdict as text: what was checked, then OK or the problems. */
export function formatVerdict(v: PreflightVerdict, image: string): string {
  const lines = [
    `image     ${image} (kernel ${v.checked.kernel.flavor} ${v.checked.kernel.version})`,
    `disks     ${v.checked.disks.join(', ') || '-'}`,
    '',
  ]
  lines.push(
    ...table(
      ['ROLE', 'FOR', 'PCI', 'ID', 'IMAGE DRIVERS'],
      v.checked.devices.map((d) => [d.role, d.for, d.address, d.id, d.drivers.join(',') || 'NONE']),
    ),
  )
  if (v.checked.skipped.length) lines.push('', `not checked (no PCI function): ${v.checked.skipped.join(', ')}`)
  lines.push('')
  if (v.ok) lines.push('OK: the image drives the disk controller and a NIC with a link')
  else for (const p of v.problems) lines.push(`REFUSED: ${p.message}`)
  return lines.join('\n') + '\n'
}

function table(head: string[], rows: string[][]): string[] {
  if (rows.length === 0) return [`${head[0]}: none`]
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')
  return [fmt(head), ...rows.map(fmt)]
}
