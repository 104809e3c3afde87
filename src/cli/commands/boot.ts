// `hwimage boot IMAGE|DIR`: boots an image once in QEMU and says what first boot proved.

import { readFile } from 'node:fs/promises'
import { InputError, UsageError } from '../../errors.js'
import { parseSeed } from '../../seed/seed-schema.js'
import { bootImage, type BootImageOptions, type BootImageResult } from '../../lab/boot-image.js'
import { failureReason } from '../../lab/judge-boot.js'
import { parseFirmware, parseSize, positiveInt } from '../args.js'
import { parseVerbArgs, type Command } from '../command.js'
import { Reporter } from '../progress.js'
import { formatBytes } from '../../units.js'

const help = `Usage: hwimage boot IMAGE|DIR [options]

Boots an image (or a build output directory with manifest.json) once in QEMU
(TCG) on a copy-on-write overlay disk with a NoCloud seed, follows the serial
console until cloud-init's final stage, and prints: firmware, whether the kernel
reports Secure Boot enabled, whether cloud-init finished, the hostname it set,
the root file system size, and the seconds to the final stage.

Options:
  --firmware F       uefi-sb (default), uefi or bios
  --storage NAME     disk controller, any QEMU storage device (default virtio-blk)
  --nic NAME         network device, any QEMU NIC (default virtio-net-pci)
  --seed SEED.yaml   make the seed from a seed file (see \`hwimage seed\`); the
                     console marker lines are added as vendor-data if it has none
  --seed-volume FILE attach this NoCloud/config-2 volume as it is
  --hostname NAME    hostname of the default seed (default hwimage-demo)
  --disk-size SIZE   virtual size of the target disk (default 20G)
  --memory MIB       guest memory in MiB (default 1024)
  --timeout S        give up after S seconds (default 600)
  --work-dir DIR     keep this boot's files here (default: a temp directory)
  --keep-disk        keep the overlay disk after the boot
  --json             one JSON document on stdout, JSON-lines events on stderr

Exit status: 0 when cloud-init reached its final stage (and, for uefi-sb, the
kernel reports Secure Boot enabled); 1 otherwise, with where the boot stopped.
`

/** `hwimage boot`. */
export const bootCommand: Command = {
  name: 'boot',
  help,
  async run(argv, ctx) {
    const parsed = parseVerbArgs(
      this,
      argv,
      {
        firmware: { type: 'string', default: 'uefi-sb' },
        storage: { type: 'string', default: 'virtio-blk' },
        nic: { type: 'string', default: 'virtio-net-pci' },
        seed: { type: 'string' },
        'seed-volume': { type: 'string' },
        hostname: { type: 'string', default: 'hwimage-demo' },
        'disk-size': { type: 'string', default: '20G' },
        memory: { type: 'string', default: '1024' },
        timeout: { type: 'string', default: '600' },
        'work-dir': { type: 'string' },
        'keep-disk': { type: 'boolean' },
        json: { type: 'boolean' },
      },
      ctx,
    )
    if (!parsed) return 0
    const v = parsed.values as Record<string, string | boolean | undefined>
    if (parsed.positionals.length !== 1)
      throw new UsageError('Cannot boot: give exactly one IMAGE or build directory', { hint: 'hwimage boot out/demo' })
    const firmware = parseFirmware(String(v.firmware))
    if (v.seed !== undefined && v['seed-volume'] !== undefined)
      throw new UsageError('Cannot boot: give --seed or --seed-volume, not both')
    const json = v.json === true
    const rep = new Reporter(ctx.stderr, json)
    const seed: BootImageOptions['seed'] =
      typeof v['seed-volume'] === 'string'
        ? { kind: 'volume', path: v['seed-volume'] }
        : typeof v.seed === 'string'
          ? {
              kind: 'seed',
              seed: parseSeed(
                await readFile(v.seed, 'utf8').catch((e: NodeJS.ErrnoException) => {
                  throw new InputError(
                    'NOT_FOUND',
                    `Cannot read seed "${v.seed}": ${e.code === 'ENOENT' ? 'no such file' : e.message}`,
                  )
                }),
                String(v.seed),
              ),
            }
          : { kind: 'default', hostname: String(v.hostname) }
    rep.log(
      `booting ${parsed.positionals[0]} (${firmware}, ${v.storage}, ${v.nic}) under TCG — this takes a few minutes`,
    )
    rep.event('start', { image: parsed.positionals[0], firmware, storage: v.storage, nic: v.nic })
    const result = await bootImage({
      image: parsed.positionals[0]!,
      firmware,
      storage: String(v.storage),
      nic: String(v.nic),
      seed,
      diskSizeBytes: parseSize(String(v['disk-size']), '--disk-size'),
      timeoutMs: positiveInt(String(v.timeout), '--timeout') * 1000,
      memoryMiB: positiveInt(String(v.memory), '--memory'),
      cpus: 1,
      ...(typeof v['work-dir'] === 'string' ? { workDir: v['work-dir'] } : {}),
      keepDisk: v['keep-disk'] === true,
      signal: ctx.signal,
      onMilestone: (m) => {
        rep.log(`  ${m.at.toFixed(1).padStart(6)}s  ${m.kind.padEnd(16)} ${m.line.slice(0, 100)}`)
        rep.event('milestone', { ...m })
      },
    })
    if (json) ctx.stdout.write(JSON.stringify(result, null, 2) + '\n')
    else ctx.stdout.write(renderBootResult(result))
    if (!result.ok) rep.log(`hwimage: boot failed: ${failureReason(result)}`)
    return result.ok ? 0 : 1
  },
}

/** The human summary of a boot. */
export function renderBootResult(r: BootImageResult): string {
  const rows: [string, string][] = [
    ['firmware', `${r.firmware} (${r.storage}, ${r.nic})`],
    ['secure boot', r.secureBoot ?? (r.firmware === 'bios' ? 'not applicable (BIOS)' : 'not reported by the kernel')],
    [
      'final stage',
      r.finalStage
        ? `reached in ${r.secondsToFinalStage} s (cloud-init ${r.cloudInitVersion ?? '?'}, ${r.datasource ?? '?'})`
        : 'not reached',
    ],
    ['hostname', r.hostname ?? 'not seen'],
    ['root fs', r.rootBytes !== null ? `${formatBytes(r.rootBytes)} (${r.rootBytes} bytes)` : 'not seen'],
    ['kernel', r.kernelVersion ?? 'not seen'],
    ['serial log', r.serialLog],
    ['result', r.ok ? 'ok' : `FAILED: ${failureReason(r)}`],
  ]
  return rows.map(([k, val]) => `${k.padEnd(12)} ${val}\n`).join('')
}
