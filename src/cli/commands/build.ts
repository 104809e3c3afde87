// `hwimage build [SPEC.yaml] [-o DIR]`

import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { InputError } from '../../errors.js'
import { buildImage } from '../../build/build-image.js'
import { DEFAULT_SPEC_YAML, parseSpec } from '../../build/spec.js'
import { parseVerbArgs, type Command } from '../command.js'
import { Reporter } from '../progress.js'
import { formatBytes } from '../../units.js'

const help = `Usage: hwimage build [SPEC.yaml] [-o DIR] [--json] [--verbose] [--keep-work]

Builds a hardware image: Debian (mmdebstrap), cloud-init, GRUB for UEFI with
Secure Boot (Microsoft-signed shim, Debian-signed GRUB) and for BIOS, in a GPT
disk image made without loop devices or mounts.

With no SPEC, builds the default: Debian 12 "bookworm", amd64, kernel flavor
"server" (Debian's generic kernel cut to the server module set), 2 GiB.
See docs/build.md for the spec's keys.

Writes to DIR (default: out/<name>):
  NAME.img        sparse raw disk image
  NAME.img.zst    zstd-compressed image
  NAME.img.bmap   block map (bmaptool format 2.0)
  NAME.qcow2      compressed qcow2 for OpenStack Glance / Ironic (spec key
                  qcow2: zstd (default), zlib for QEMU before 5.1, or false)
  SHA256SUMS      digests of the image files
  manifest.json   spec, packages, kernel, partitions, sizes, digests, build time

Options:
  -o, --output DIR   output directory
      --json         print the manifest as JSON on stdout; progress as JSON lines on stderr
      --verbose      show mmdebstrap's output
      --keep-work    keep the root tree (printed) for debugging
      --print-default-spec   print the default spec and exit
  -h, --help         this help

Needs root (mmdebstrap --mode=root). Packages are cached in the spec's "cache"
directory (default /var/cache/hwimage/apt) so a rebuild downloads only changes.
`

export const buildCommand: Command = {
  name: 'build',
  help,
  async run(argv, ctx) {
    const parsed = parseVerbArgs(
      this,
      argv,
      {
        output: { type: 'string', short: 'o' },
        json: { type: 'boolean' },
        verbose: { type: 'boolean' },
        'keep-work': { type: 'boolean' },
        'print-default-spec': { type: 'boolean' },
      },
      ctx,
    )
    if (!parsed) return 0
    const v = parsed.values as {
      output?: string
      json?: boolean
      verbose?: boolean
      'keep-work'?: boolean
      'print-default-spec'?: boolean
    }
    if (v['print-default-spec']) {
      ctx.stdout.write(DEFAULT_SPEC_YAML)
      return 0
    }
    if (parsed.positionals.length > 1)
      throw new InputError('USAGE', `Cannot build: expected at most one spec, got ${parsed.positionals.length}`, {
        hint: 'hwimage build [SPEC.yaml] [-o DIR]',
      })
    const specPath = parsed.positionals[0]
    let text = DEFAULT_SPEC_YAML
    if (specPath) {
      text = await readFile(specPath, 'utf8').catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'EISDIR')
          throw new InputError('USAGE', `Cannot read spec "${specPath}": it is a directory`, {
            hint: 'hwimage build [SPEC.yaml] [-o DIR]: the spec is a YAML file',
          })
        throw new InputError(
          'NOT_FOUND',
          `Cannot read spec "${specPath}": ${e.code === 'ENOENT' ? 'no such file' : e.message}`,
          { cause: e },
        )
      })
    }
    const source = specPath ? `spec "${specPath}"` : 'default spec'
    const spec = parseSpec(text, source)
    const outDir = resolve(v.output ?? `out/${spec.name}`)
    const rep = new Reporter(ctx.stderr, v.json ?? false)
    rep.event('start', { name: spec.name, outDir })
    rep.log(`Building ${spec.name} (Debian ${spec.release}, kernel ${spec.kernel.flavor}) into ${outDir}`)
    const manifest = await buildImage(spec, {
      outDir,
      specDir: specPath ? dirname(resolve(specPath)) : process.cwd(),
      verbose: v.verbose ?? false,
      keepWorkDir: v['keep-work'] ?? false,
      signal: ctx.signal,
      source,
      onWarning: (m) => rep.warn(m),
      onStep: (s) => {
        rep.log(`  [${rep.elapsed().toFixed(0).padStart(4)}s] ${s}`)
        rep.event('step', { step: s })
      },
    })
    rep.event('done', { seconds: manifest.build.seconds })
    if (v.json) {
      ctx.stdout.write(JSON.stringify(manifest) + '\n')
    } else {
      const zst = manifest.files.find((f) => f.name.endsWith('.zst'))
      ctx.stdout.write(
        [
          `image     ${outDir}/${manifest.image.file}`,
          `size      ${formatBytes(manifest.image.sizeBytes)} (${formatBytes(manifest.image.mappedBytes)} mapped, ${formatBytes(zst?.bytes ?? 0)} as .zst)`,
          `kernel    ${manifest.kernel.version} (${manifest.kernel.flavor}, ${formatBytes(manifest.kernel.footprintBytes)} installed, ${manifest.kernel.modules.length} modules)`,
          `packages  ${Object.keys(manifest.packages).length}`,
          `seconds   ${manifest.build.seconds}`,
          '',
        ].join('\n'),
      )
    }
    return 0
  },
}
