// `hwimage install SOURCE --disk TARGET …`: parse, call install(), print the report.

import { UsageError } from '../../errors.js'
import { parseDiskHints } from '../../install/disk-hints.js'
import { install, planOfRefusal } from '../../install/install.js'
import type { SeedFormat } from '../../seed/seed-schema.js'
import { formatPlan, formatReport } from '../../install/install-report.js'
import { parseVerbArgs, type Command } from '../command.js'
import { Reporter } from '../progress.js'

const help = `Usage: hwimage install SOURCE (--disk TARGET | --disk-hint KEY=VALUE…) [options]
       hwimage install --catalog URL|DIR NAME[@SERIAL] (--keyring FILE | --insecure) --disk TARGET [options]

Writes a disk image onto a disk (block device) or an image file, fast and verified.
The target's first MiB (where the partition table lives) is written last, after
everything else is on the disk and checked: an install that fails or is stopped
leaves a disk that does not boot, never half an image.

SOURCE is a file, an http:// or https:// URL (a dropped connection resumes with
Range requests), or - for stdin. Its format is detected from its first bytes:
raw, zstd, xz, gzip or qcow2. A bmap beside it (SOURCE.bmap, or the name without
its compression suffix plus .bmap) is used automatically.

Target:
  --disk TARGET         a block device (/dev/sdb, /dev/nvme1n1) or a regular file
  --disk-hint K=V       select the one disk matching: serial, wwn, model, vendor,
                        name, hctl, rotational, size (20G, >=100G, <=2T),
                        min-size, max-size; repeat or comma-separate (Ironic's
                        root device hints). None or several matching is an error.
Catalog (docs/catalog.md):
  --catalog URL|DIR     install by name from a simplestreams catalog: NAME is a
                        product (org.hwimage:debian:12:amd64:server), an alias
                        (bookworm/server) or latest; @SERIAL picks a version
                        (default the newest). The image's SHA-256 and size, and
                        its bmap, come from the signed catalog
  --keyring FILE        the keyring the catalog must be signed by (gpgv)
  --insecure            use a catalog without checking its signatures
Image:
  --bmap FILE|URL       the block map to use (default: found beside SOURCE)
  --no-bmap             ignore any bmap: zero the image's span, write data blocks
  --sha256 HEX          expected SHA-256 of SOURCE as read (as SHA256SUMS lists it)
  --sha256-url URL|FILE a SHA256SUMS file: the line for SOURCE's file name is used
  --image-digest        also compute the uncompressed image's SHA-256 (reads the
                        whole image, zeros included: slower)
  --raw                 write SOURCE even if it does not look like a disk image
                        (no partition table, boot sector or file-system signature)
First boot:
  --seed SEED.yaml      add a 16 MiB seed partition named "cidata" at the end of
                        the disk (after the image; root still grows up to it):
                        FAT labelled CIDATA (NoCloud) or config-2 (config drive)
                        with the target's sector size; its hwimage.json records
                        this install (image digest, target, time). The schema is
                        in docs/first-boot-contract.md
  --seed-format F       nocloud or configdrive: overrides the seed's format:
Disk:
  --uefi-only           a 512-byte-sector image onto a 4096-byte-sector (4Kn) disk
                        is converted (GPT in 4 KiB LBAs, the ESP's FAT made again
                        with 4 KiB sectors); an image that can boot by BIOS is
                        refused there (BIOS cannot boot from 4Kn) unless this is
                        given: then it boots by UEFI only
Safety and output:
  --verify              read everything written back from the disk and compare
  --dry-run             print the plan (sizes, checks, what is zeroed, what it would
                        destroy) and write nothing; exits as the install would
  -y, --yes             overwrite a disk that holds a partition table, file system,
                        RAID/LVM/LUKS signature without asking
  --json                JSON-lines events on stderr, one JSON report on stdout
  -h, --help            this help

Exit status: 0 installed, 1 failed (device, network, tool), 2 bad input (corrupt
or truncated source, digest mismatch, target too small), 130 interrupted.

Examples:
  hwimage install out/default/debian-12-server-amd64.img.zst --disk /dev/sdb --dry-run
  hwimage install https://images.example/debian-12-server-amd64.img.zst \
      --disk-hint serial=S3Z1NB0K --seed metal-01.yaml --yes --json
  hwimage install --catalog https://images.example/hwimage/ bookworm/server \
      --keyring /etc/hwimage/keyring.gpg --disk /dev/sdb --yes
See docs/install.md for the zeroing contract and worked examples.
`

export const installCommand: Command = {
  name: 'install',
  help,
  async run(argv, ctx) {
    const parsed = parseVerbArgs(
      this,
      argv,
      {
        disk: { type: 'string' },
        'disk-hint': { type: 'string', multiple: true },
        bmap: { type: 'string' },
        'no-bmap': { type: 'boolean' },
        sha256: { type: 'string' },
        'sha256-url': { type: 'string' },
        'image-digest': { type: 'boolean' },
        raw: { type: 'boolean' },
        verify: { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        yes: { type: 'boolean', short: 'y' },
        json: { type: 'boolean' },
        seed: { type: 'string' },
        'seed-format': { type: 'string' },
        catalog: { type: 'string' },
        keyring: { type: 'string' },
        insecure: { type: 'boolean' },
        'uefi-only': { type: 'boolean' },
      },
      ctx,
    )
    if (!parsed) return 0
    const v = parsed.values
    const [source, ...rest] = parsed.positionals
    if (!source || rest.length)
      throw new UsageError('Cannot install: expected exactly one SOURCE', {
        hint: 'hwimage install SOURCE --disk TARGET',
      })
    if (v.bmap && v['no-bmap']) throw new UsageError('Cannot use both --bmap and --no-bmap')
    const json = v.json === true
    const reporter = new Reporter(ctx.stderr, json)
    const seedFormat = v['seed-format']
    if (seedFormat !== undefined && typeof v.seed !== 'string')
      throw new UsageError('Cannot use --seed-format without --seed')
    // The seed's modules (schema validation, YAML) load only when a seed is given: an
    // install without one starts faster.
    const seeding = typeof v.seed === 'string' ? await import('../../install/seed-partition.js') : undefined
    if (typeof seedFormat === 'string') {
      const { SEED_FORMATS } = await import('../../seed/seed-schema.js')
      if (!(SEED_FORMATS as readonly string[]).includes(seedFormat))
        throw new UsageError(`Cannot use --seed-format "${seedFormat}": expected ${SEED_FORMATS.join(' or ')}`)
    }
    const seed = seeding && typeof v.seed === 'string' ? await seeding.readSeedFile(v.seed) : undefined
    const seedWriter =
      seeding && seed
        ? seeding.seedStep(seed, {
            ...(typeof seedFormat === 'string' ? { format: seedFormat as SeedFormat } : {}),
            onWarning: (w) => reporter.warn(w),
            onWritten: (s) => {
              reporter.event('seed', {
                partition: s.partition,
                offset: s.offset,
                sizeBytes: s.sizeBytes,
                label: s.label,
                instanceId: s.instanceId,
                networkVersion: s.networkVersion,
              })
              reporter.log(
                `seed partition ${s.partition} at byte ${s.offset}: ${s.label}, instance-id ${s.instanceId}, network config version ${s.networkVersion}`,
              )
            },
          })
        : undefined
    // --catalog: the positional is a name; the catalog gives the source, its digest and bmap (src/catalog/).
    if (typeof v.catalog !== 'string' && (typeof v.keyring === 'string' || v.insecure))
      throw new UsageError('Cannot use --keyring or --insecure without --catalog')
    if (typeof v.catalog === 'string' && (v.sha256 || v['sha256-url'] || v.bmap || v['no-bmap']))
      throw new UsageError(
        'Cannot use --sha256, --sha256-url, --bmap or --no-bmap with --catalog: the catalog gives them',
      )
    const fromCatalog =
      typeof v.catalog === 'string'
        ? await (await import('../../catalog/install-source.js')).catalogInstallSource({
            catalog: v.catalog,
            ref: source,
            ...(typeof v.keyring === 'string' ? { keyring: v.keyring } : {}),
            insecure: v.insecure === true,
            signal: ctx.signal,
          })
        : undefined
    if (fromCatalog) {
      const { product, serial } = fromCatalog.version
      reporter.event('catalog', { product, serial, source: fromCatalog.source, signedBy: fromCatalog.signedBy ?? null })
      if (fromCatalog.signedBy) reporter.log(`catalog: ${product}@${serial}, signed by ${fromCatalog.signedBy}`)
      else reporter.warn(`the catalog is not verified (--insecure): ${product}@${serial} is installed on its word`)
    }
    const interactive = !json && source !== '-' && Boolean(process.stdin.isTTY) && Boolean(ctx.stderr.isTTY)
    const report = await install({
      ...(v.raw === true ? { raw: true } : {}),
      source: fromCatalog?.source ?? source,
      ...(typeof v.disk === 'string' ? { disk: v.disk } : {}),
      ...(Array.isArray(v['disk-hint']) ? { diskHints: parseDiskHints(v['disk-hint'] as string[]) } : {}),
      ...(v['no-bmap'] ? { bmap: false as const } : typeof v.bmap === 'string' ? { bmap: v.bmap } : {}),
      ...(typeof v.sha256 === 'string' ? { sha256: v.sha256 } : {}),
      ...(fromCatalog ? { sha256: fromCatalog.sha256, ...(fromCatalog.bmap ? { bmap: fromCatalog.bmap } : {}) } : {}),
      ...(typeof v['sha256-url'] === 'string' ? { sha256Url: v['sha256-url'] } : {}),
      imageDigest: v['image-digest'] === true,
      verify: v.verify === true,
      dryRun: v['dry-run'] === true,
      yes: v.yes === true,
      ...(interactive ? { confirm: (q: string) => askYes(q, ctx.stderr, ctx.signal) } : {}),
      ...(seedWriter ? { seed: seedWriter } : {}),
      ...(v['uefi-only'] === true ? { uefiOnly: true } : {}),
      signal: ctx.signal,
      onEvent: (name, fields) => {
        reporter.event(name, fields)
        if (name === 'resume')
          reporter.log(
            `download dropped (${String(fields.reason)}); resumed at byte ${String(fields.at)}, attempt ${String(fields.attempt)}`,
          )
      },
      onProgress: reporter.progress,
    })
      .catch((e: unknown) => {
        // A dry run that the install would refuse: the plan first, then the refusal (and its exit code).
        const plan = planOfRefusal(e)
        if (plan) ctx.stdout.write(json ? JSON.stringify(plan) + '\n' : formatPlan(plan))
        throw e
      })
      .finally(() => fromCatalog?.close())
    reporter.clearBar()
    for (const w of report.warnings) reporter.warn(w)
    if (json) ctx.stdout.write(JSON.stringify(report) + '\n')
    else ctx.stdout.write(report.dryRun ? formatPlan(report) : formatReport(report))
    return 0
  },
}

async function askYes(question: string, out: NodeJS.WritableStream, signal: AbortSignal): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises') // only a TTY asks
  const rl = createInterface({ input: process.stdin, output: out })
  try {
    // Ctrl-C at the prompt aborts the question (and the install, exit 130), writing nothing.
    return (await rl.question(`${question} Type "yes" to continue: `, { signal })).trim().toLowerCase() === 'yes'
  } finally {
    rl.close()
  }
}
