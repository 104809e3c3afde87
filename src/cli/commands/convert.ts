// `hwimage convert SOURCE -o DIR [--kernel server|generic] [--grow SIZE]`

import { InputError } from '../../errors.js'
import { convertImage, defaultName } from '../../convert/convert-image.js'
import { parseSize } from '../args.js'
import { parseVerbArgs, type Command } from '../command.js'
import { Reporter } from '../progress.js'
import { formatBytes } from '../../units.js'

const help = `Usage: hwimage convert SOURCE -o DIR [--kernel server|generic] [--grow SIZE] [--name NAME] [--json]

Converts an existing Debian 12 "bookworm" amd64 cloud image into a hardware image:
the same image with a hardware kernel. The kernel is installed with apt from the
image's own Debian mirror (so apt keeps upgrading it), the kernel it had (cloud or
any other Debian kernel) is purged, the initramfs carries every storage driver,
GRUB's configuration is made again; GRUB's BIOS boot code and the ESP's shim and
signed GRUB are installed if missing. Everything else stays as it was: the
partition table, the partitions' GUIDs, the root file system's UUID, label and
features, the other files (manifest.json lists what changed).

SOURCE: a qcow2, raw, .img.zst, .img.xz or .img.gz image, a file or an http(s)
URL, laid out as Debian's cloud images are (GPT: root 1, BIOS boot 14, ESP 15).

Writes to DIR, as \`hwimage build\` does:
  NAME.img        sparse raw disk image
  NAME.img.zst    zstd-compressed image
  NAME.img.bmap   block map (bmaptool format 2.0)
  NAME.qcow2      compressed qcow2 (zstd clusters; OpenStack / Ironic whole-disk images)
  SHA256SUMS      digests of the four
  manifest.json   packages, kernel, partitions, and convertedFrom: the input's
                  name, SHA-256, kernel, and the file-level diff of the root tree

Options:
  -o, --output DIR   output directory (made if missing; nothing is written to it on failure)
      --kernel K     server (default: Debian's generic kernel cut to the server module
                     set) or generic (Debian's linux-image-amd64 as it is)
      --grow SIZE    add SIZE (e.g. 512M, 1G) to the root file system, growing the root
                     partition and the image as far as needed
      --name NAME    name of the outputs (default: SOURCE's name without extensions + "-hw")
      --json         print the manifest as JSON on stdout; progress as JSON lines on stderr
      --verbose      show apt's output
  -h, --help         this help

Examples:
  hwimage convert debian-12-genericcloud-amd64.qcow2 -o out/converted
  hwimage convert https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2 \
      -o out/converted --kernel generic --grow 512M
  hwimage test out/converted --report lab-converted    (then: hwimage test --compare lab-input lab-converted)

Needs root (apt and dpkg run in a chroot of the image's tree). See docs/convert.md.
`

export const convertCommand: Command = {
  name: 'convert',
  help,
  async run(argv, ctx) {
    const parsed = parseVerbArgs(
      this,
      argv,
      {
        output: { type: 'string', short: 'o' },
        kernel: { type: 'string' },
        grow: { type: 'string' },
        name: { type: 'string' },
        json: { type: 'boolean' },
        verbose: { type: 'boolean' },
      },
      ctx,
    )
    if (!parsed) return 0
    const v = parsed.values as {
      output?: string
      kernel?: string
      grow?: string
      name?: string
      json?: boolean
      verbose?: boolean
    }
    if (parsed.positionals.length !== 1)
      throw new InputError('USAGE', `Cannot convert: expected one SOURCE image, got ${parsed.positionals.length}`, {
        hint: 'hwimage convert SOURCE -o DIR',
      })
    const source = parsed.positionals[0]!
    if (!v.output)
      throw new InputError('USAGE', 'Cannot convert: no output directory', { hint: `hwimage convert ${source} -o DIR` })
    const flavor = v.kernel ?? 'server'
    if (flavor !== 'server' && flavor !== 'generic')
      throw new InputError('USAGE', `Cannot convert: --kernel "${flavor}" is not server or generic`, {
        hint: '--kernel server (the default) or --kernel generic',
      })
    if (v.name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(v.name))
      throw new InputError('USAGE', `Cannot convert: --name "${v.name}" is not a file name`, {
        hint: 'letters, digits, ".", "_" and "-"',
      })
    const growBytes = v.grow === undefined ? 0 : Number(parseSize(v.grow, '--grow'))
    const rep = new Reporter(ctx.stderr, v.json ?? false)
    const name = v.name ?? defaultName(source)
    rep.event('start', { source, outDir: v.output, kernel: flavor, name })
    rep.log(`Converting ${source} (kernel ${flavor}) into ${v.output}`)
    const manifest = await convertImage({
      source,
      outDir: v.output,
      flavor,
      growBytes,
      name,
      verbose: v.verbose ?? false,
      signal: ctx.signal,
      onStep: (s) => {
        rep.log(`  [${rep.elapsed().toFixed(0).padStart(4)}s] ${s}`)
        rep.event('step', { step: s })
      },
    })
    rep.event('done', { seconds: manifest.build.seconds })
    if (v.json) {
      ctx.stdout.write(JSON.stringify(manifest) + '\n')
      return 0
    }
    const c = manifest.convertedFrom
    const cats = Object.entries(c.diff.categories)
      .map(([k, n]) => `${k} +${n.added} -${n.removed} ~${n.changed}`)
      .join(', ')
    ctx.stdout.write(
      [
        `image     ${v.output}/${manifest.image.file}`,
        `from      ${c.name} (${c.os}; kernel ${c.kernel.versions.join(', ') || 'none'})`,
        `kernel    ${manifest.kernel.version} (${manifest.kernel.flavor}, ${formatBytes(manifest.kernel.footprintBytes)} installed, ${manifest.kernel.modules.length} modules)`,
        `boot      BIOS ${c.boot.bios}, UEFI ${c.boot.uefi}`,
        `changed   ${cats}`,
        `seconds   ${manifest.build.seconds}`,
        '',
      ].join('\n'),
    )
    return 0
  },
}
