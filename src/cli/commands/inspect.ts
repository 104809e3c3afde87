// `hwimage inspect IMAGE [--json]`

import { inspectImage, type Inspection } from '../../inspect/inspect-image.js'
import { UsageError } from '../../errors.js'
import { parseVerbArgs, type Command } from '../command.js'
import { formatBytes } from '../../units.js'

const help = `Usage: hwimage inspect IMAGE [--json]

Shows what a raw disk image (or a block device) holds: the GPT (both copies),
each partition's type, size and 1 MiB alignment, the boot paths found (GRUB's
BIOS boot code and core.img; an ESP with shim and GRUB for UEFI/Secure Boot),
the kernel version(s) in /boot, and problems: misaligned or overlapping
partitions, a damaged or missing backup GPT, a backup not at the disk's end.

Exit status: 0 when no problems are found, 1 when there are problems,
2 when IMAGE is not a readable raw disk image.

Options:
  --json      one JSON document on stdout
  -h, --help  this help
`

function render(i: Inspection): string {
  const lines = [
    `image      ${i.path} (${formatBytes(i.sizeBytes)}, ${i.sectorSize}-byte sectors)`,
    `table      GPT ${i.table.diskGuid}; primary ${i.table.primaryOk ? 'ok' : 'DAMAGED'}, backup ${i.table.backupOk ? 'ok' : 'DAMAGED/MISSING'}`,
    '',
    '  #  name       type                   first LBA    last LBA      size  1MiB-aligned',
    ...i.table.partitions.map(
      (p) =>
        `${String(p.number).padStart(3)}  ${p.name.padEnd(9)}  ${p.type.padEnd(21)} ${p.firstLba.padStart(10)}  ${p.lastLba.padStart(10)}  ${formatBytes(p.sizeBytes).padStart(9)}  ${p.aligned ? 'yes' : 'NO'}`,
    ),
    '',
    `BIOS       ${i.boot.bios ? 'yes' : 'no'} — ${i.boot.biosDetail}`,
    `UEFI       ${i.boot.uefi ? 'yes' : 'no'} — ${i.boot.uefiDetail}`,
    `kernel     ${i.kernel ? i.kernel.versions.join(', ') || 'none in /boot' : 'no Linux root filesystem found'}`,
    `problems   ${i.problems.length ? '' : 'none'}`,
    ...i.problems.map((p) => `  - [${p.code}] ${p.message}`),
    '',
  ]
  return lines.join('\n')
}

export const inspectCommand: Command = {
  name: 'inspect',
  help,
  async run(argv, ctx) {
    const parsed = parseVerbArgs(this, argv, { json: { type: 'boolean' } }, ctx)
    if (!parsed) return 0
    const [image, ...rest] = parsed.positionals
    if (!image || rest.length)
      throw new UsageError('Cannot inspect: expected exactly one IMAGE', { hint: 'hwimage inspect IMAGE [--json]' })
    const result = await inspectImage(image)
    ctx.stdout.write(parsed.values.json ? JSON.stringify(result, null, 2) + '\n' : render(result))
    return result.problems.length ? 1 : 0
  },
}
