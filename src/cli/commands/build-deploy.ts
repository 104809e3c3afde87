// `hwimage build-deploy -o DIR`: the network deploy environment (src/deploy/build-deploy.ts).

import { resolve } from 'node:path'
import { UsageError } from '../../errors.js'
import { buildDeploy } from '../../deploy/build-deploy.js'
import { parseVerbArgs, type Command } from '../command.js'
import { Reporter } from '../progress.js'
import { formatBytes } from '../../units.js'

const help = `Usage: hwimage build-deploy -o DIR [--compression zstd|xz] [--level N] [--json]

Builds the deploy environment: a kernel and one initramfs that a machine boots from
the network to run hwimage (iPXE over HTTP, or shim → GRUB → kernel over TFTP under
Secure Boot). Debian's signed kernel with the server flavor's modules (signed, as
shipped), busybox from busybox-static, the programs the installer runs with their
libraries, and hwimage as one Node executable. Needs a checkout (esbuild, postject,
the native addon) and root for nothing.

Writes to DIR:
  vmlinuz         the kernel (Debian-signed)
  initrd          cpio newc archive, zstd (default) or xz
  manifest.json   sizes of every part, versions, module count, the kernel command line

Options:
  -o, --output DIR     output directory (required)
      --compression C  zstd (default: 6x faster to unpack than xz, within 64 MiB) or xz
      --level N        compression level (default: zstd 19, xz 6)
      --no-measure     skip compressing each part on its own for the manifest
      --json           print the manifest as JSON on stdout
  -h, --help           this help

Example:
  hwimage build-deploy -o out/deploy && jq .total out/deploy/manifest.json
`

/** \`hwimage build-deploy\`. */
export const buildDeployCommand: Command = {
  name: 'build-deploy',
  help,
  async run(argv, ctx) {
    const args = parseVerbArgs(
      this,
      argv,
      {
        output: { type: 'string', short: 'o' },
        compression: { type: 'string' },
        level: { type: 'string' },
        'no-measure': { type: 'boolean' },
        json: { type: 'boolean' },
      },
      ctx,
      false,
    )
    if (!args) return 0
    const v = args.values as Record<string, string | boolean | undefined>
    if (typeof v.output !== 'string')
      throw new UsageError('Cannot build the deploy environment: -o DIR is required', {
        hint: 'hwimage build-deploy -o out/deploy',
      })
    const compression = (v.compression as string | undefined) ?? 'zstd'
    if (compression !== 'zstd' && compression !== 'xz')
      throw new UsageError(`Cannot parse --compression: "${compression}" is not zstd or xz`)
    let level: number | undefined
    if (typeof v.level === 'string') {
      level = Number(v.level)
      const max = compression === 'zstd' ? 19 : 9
      if (!Number.isInteger(level) || level < 1 || level > max)
        throw new UsageError(`Cannot parse --level: "${v.level}" is not a ${compression} level from 1 to ${max}`)
    }
    const outDir = resolve(v.output)
    const rep = new Reporter(ctx.stderr, v.json === true)
    rep.log(`Building the deploy environment into ${outDir}`)
    const m = await buildDeploy({
      outDir,
      compression,
      ...(level ? { level } : {}),
      measureParts: v['no-measure'] !== true,
      signal: ctx.signal,
      onStep: (s) => {
        rep.log(`  [${rep.elapsed().toFixed(0).padStart(4)}s] ${s}`)
        rep.event('step', { step: s })
      },
    })
    if (v.json) ctx.stdout.write(JSON.stringify(m) + '\n')
    else {
      const p = m.parts
      const c = (n: number | null) => (n === null ? '' : `, ${formatBytes(n)} compressed`)
      ctx.stdout.write(
        [
          `kernel    ${outDir}/vmlinuz  ${m.kernel.version}, ${formatBytes(m.kernel.bytes)}`,
          `initrd    ${outDir}/initrd  ${formatBytes(m.initramfs.bytes)} (${m.initramfs.compression} -${m.initramfs.level}, ${formatBytes(m.initramfs.uncompressedBytes)} unpacked)`,
          `  modules   ${p.modules.count}, ${formatBytes(p.modules.bytes)}${c(p.modules.compressedBytes)}`,
          `  hwimage   node ${p.hwimage.nodeVersion} executable, ${formatBytes(p.hwimage.bytes)}${c(p.hwimage.compressedBytes)}`,
          `  programs  ${p.programs.programs.length} + ${p.programs.libraries.length} libraries, ${formatBytes(p.programs.bytes)}${c(p.programs.compressedBytes)}`,
          `  busybox   ${formatBytes(p.busybox.bytes)}${c(p.busybox.compressedBytes)}`,
          `total     ${formatBytes(m.total.bytes)} (goal ${formatBytes(m.total.goalBytes)}: ${m.total.withinGoal ? 'met' : `missed by ${formatBytes(m.total.bytes - m.total.goalBytes)}`})`,
          `cmdline   ${m.cmdline}`,
          '',
        ].join('\n'),
      )
    }
    return 0
  },
}
