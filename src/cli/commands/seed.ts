// `hwimage seed SEED.yaml -o FILE`: a standalone first-boot volume (NoCloud CIDATA
// or OpenStack config-2), or Ironic's base64-of-gzip config drive.

import { constants } from 'node:fs'
import { access, chmod, copyFile, lstat, readFile, stat, statfs, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { UsageError, InputError } from '../../errors.js'
import { detectNetworkRenderer } from '../../seed/detect-network-renderer.js'
import { encodeIronicConfigDrive } from '../../seed/ironic.js'
import { MAX_SEED_VOLUME_BYTES, SEED_PARTITION, makeSeedVolume, readSeedVolume } from '../../seed/make-seed-volume.js'
import { parseSeed, SEED_FORMATS, type SeedFormat } from '../../seed/seed-schema.js'
import type { SeedFs } from '../../seed/volume.js'
import { parseSize } from '../args.js'
import { parseVerbArgs, type Command } from '../command.js'
import { Reporter } from '../progress.js'
import { formatBytes } from '../../units.js'

const HELP = `Usage: hwimage seed SEED.yaml -o FILE [options]

Makes a first-boot seed volume from a seed file (docs/first-boot-contract.md):
a NoCloud volume labelled CIDATA, or an OpenStack config drive labelled config-2,
to attach as a second disk, USB stick or BMC virtual media. Stock cloud-init reads it.

Options:
  -o, --output FILE       where to write the volume ("-" for stdout with --ironic)
      --format F          nocloud or configdrive (default: the seed's "format", else nocloud)
      --fs FS             vfat or iso9660 (default vfat)
      --sector-size N     FAT bytes per sector: 512 or 4096, the target disk's logical
                          sector size (default 512)
      --size SIZE         FAT volume size, 1M to 256M (default 16M, the seed partition's
                          size, which holds every seed the schema accepts)
      --ironic            write what Ironic's API takes as a config drive: an ISO 9660
                          config-2 volume, gzipped, base64-encoded (implies
                          --format configdrive --fs iso9660)
      --image IMAGE       detect the network config version from a raw image (version 2
                          for netplan images, 1 otherwise)
      --network-version N 1 or 2: skip detection (default 1, for ifupdown images)
      --json              print the result as one JSON document
  -h, --help              this help

Exit codes: 0 written, 1 failed, 2 bad seed or usage (the message names the field).
Example:
  hwimage seed metal-01.yaml -o metal-01-seed.img
  hwimage seed metal-01.yaml --ironic -o configdrive.b64
`

/** `hwimage seed`. */
export const seedCommand: Command = {
  name: 'seed',
  help: HELP,
  async run(argv, ctx) {
    const args = parseVerbArgs(
      this,
      argv,
      {
        output: { type: 'string', short: 'o' },
        format: { type: 'string' },
        fs: { type: 'string' },
        'sector-size': { type: 'string' },
        size: { type: 'string' },
        ironic: { type: 'boolean' },
        image: { type: 'string' },
        'network-version': { type: 'string' },
        json: { type: 'boolean' },
      },
      ctx,
    )
    if (!args) return 0
    const v = args.values as Record<string, string | boolean | undefined>
    const json = v.json === true
    const reporter = new Reporter(ctx.stderr, json)
    const [seedPath, ...extra] = args.positionals
    if (!seedPath || extra.length)
      throw new UsageError('Cannot make a seed: give exactly one seed file', { hint: 'hwimage seed SEED.yaml -o FILE' })
    const output = v.output as string | undefined
    if (!output) throw new UsageError('Cannot make a seed: -o FILE is required')
    const ironic = v.ironic === true
    if (output === '-' && !ironic)
      throw new UsageError('Cannot write a volume image to stdout: "-o -" is for --ironic only')

    let format = choice(v.format, SEED_FORMATS, '--format') as SeedFormat | undefined
    let fs = choice(v.fs, ['vfat', 'iso9660'] as const, '--fs') as SeedFs | undefined
    if (ironic) {
      if (format === 'nocloud' || fs === 'vfat')
        throw new UsageError(
          'Cannot combine --ironic with --format nocloud or --fs vfat: Ironic takes an ISO 9660 config-2 drive',
        )
      ;[format, fs] = ['configdrive', 'iso9660']
    }
    const sectorText = choice(v['sector-size'], ['512', '4096'] as const, '--sector-size')
    const sectorSize = sectorText === '4096' ? 4096 : 512
    const sizeBytes = typeof v.size === 'string' ? Number(parseSize(v.size, '--size')) : undefined
    if (
      sizeBytes !== undefined &&
      (sizeBytes % sectorSize !== 0 || sizeBytes % 1024 !== 0 || sizeBytes < 1024 * 1024)
    ) {
      throw new UsageError(`Cannot use --size ${v.size}: it must be at least 1M and a multiple of ${sectorSize}`)
    }
    if (sizeBytes !== undefined && sizeBytes > MAX_SEED_VOLUME_BYTES) {
      throw new UsageError(
        `Cannot use --size ${v.size}: a seed volume is at most ${MAX_SEED_VOLUME_BYTES / 1024 / 1024}M`,
        {
          hint: `the seed's files fit in the default ${SEED_PARTITION.sizeBytes / 1024 / 1024}M; leave --size out`,
        },
      )
    }
    const nv = choice(v['network-version'], ['1', '2'] as const, '--network-version')

    if (output !== '-') await checkOutputPath(output)
    if (typeof v.image === 'string' && !nv) await checkImagePath(v.image)
    const text = seedPath === '-' ? await readStdin() : await readSeedFile(seedPath)
    const seed = parseSeed(text, seedPath === '-' ? 'stdin' : seedPath)

    let networkVersion: 1 | 2 = 1
    let networkReason = 'default: version 1 for ifupdown images (pass --image to detect)'
    if (nv) [networkVersion, networkReason] = [nv === '2' ? 2 : 1, `--network-version ${nv}`]
    else if (typeof v.image === 'string') {
      const d = await detectNetworkRenderer(v.image, undefined, { signal: ctx.signal })
      ;[networkVersion, networkReason] = [d.networkVersion, d.reason]
      reporter.log(`network config: version ${d.networkVersion} (${d.reason})`)
    }

    // The volume is written whole into a temporary file, then copied to the output.
    if (output !== '-' && !ironic) await checkFreeSpace(output, sizeBytes ?? SEED_PARTITION.sizeBytes)
    const volume = await makeSeedVolume(seed, {
      ...(format ? { format } : {}),
      fs: fs ?? 'vfat',
      sectorSize,
      ...(sizeBytes !== undefined ? { sizeBytes } : {}),
      networkVersion,
      networkReason,
      signal: ctx.signal,
    })
    try {
      for (const w of volume.warnings) reporter.warn(w)
      let written = volume.sizeBytes
      if (ironic) {
        const encoded = encodeIronicConfigDrive(await readSeedVolume(volume))
        written = encoded.length
        if (output === '-') ctx.stdout.write(encoded + '\n')
        else await writeFile(output, encoded, { mode: 0o600 })
      } else {
        await copyFile(volume.path, output)
      }
      // The volume can hold password hashes and a report token.
      if (output !== '-') await chmod(output, 0o600)
      const result = {
        output,
        format: volume.format,
        fs: volume.fs,
        label: volume.label,
        ...(volume.fs === 'vfat' ? { sectorSize } : {}),
        sizeBytes: written,
        ironic,
        instanceId: volume.instanceId,
        networkConfig: seed.network ? { version: networkVersion, reason: networkReason } : null,
        files: volume.files,
        warnings: volume.warnings,
      }
      if (json) ctx.stdout.write(JSON.stringify(result) + '\n')
      else if (output !== '-') {
        const what = ironic
          ? 'Ironic config drive (gzip+base64 of ISO 9660 config-2)'
          : `${volume.format} on ${volume.fs} (label ${volume.label}${volume.fs === 'vfat' ? `, ${sectorSize}-byte sectors` : ''})`
        ctx.stdout.write(`${output}: ${what}, ${formatBytes(written)}, instance-id ${volume.instanceId}\n`)
      }
      return 0
    } finally {
      await volume.dispose()
    }
  },
}

function choice<T extends string>(
  value: string | boolean | undefined,
  allowed: readonly T[],
  flag: string,
): T | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw new UsageError(`Cannot use ${flag} "${String(value)}": expected ${allowed.join(' or ')}`)
  }
  return value as T
}

async function readSeedFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'EISDIR')
      throw new UsageError(`Cannot read seed "${path}": it is a directory`, {
        hint: 'hwimage seed SEED.yaml -o FILE: the seed is a YAML file',
      })
    throw new InputError(
      'NOT_FOUND',
      `Cannot read seed "${path}": ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      { cause: e },
    )
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c)
  return Buffer.concat(chunks).toString('utf8')
}

// A seed volume is a file to attach; writing it over a device is the installer's job.
// Checked before the seed is rendered, so a bad -o fails at once with exit 2.
async function checkOutputPath(path: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined)
  if (st && !st.isFile()) {
    throw new UsageError(`Cannot write seed to "${path}": it exists and is not a regular file`, {
      hint: 'write a file and copy it with dd, or use `hwimage install --seed` for a disk',
    })
  }
  const dir = dirname(resolve(path))
  const dirSt = await stat(dir).catch(() => undefined)
  if (!dirSt)
    throw new InputError('NOT_FOUND', `Cannot write seed to "${path}": directory "${dir}" does not exist`, {
      hint: `create it first (mkdir -p ${dir})`,
    })
  if (!dirSt.isDirectory()) throw new UsageError(`Cannot write seed to "${path}": "${dir}" is not a directory`)
  await access(dir, constants.W_OK).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(
      `Cannot write seed to "${path}": ${e.code === 'EROFS' ? 'the file system is read-only' : `directory "${dir}" is not writable`}`,
      { cause: e },
    )
  })
}

async function checkImagePath(path: string): Promise<void> {
  const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new InputError(
      'NOT_FOUND',
      `Cannot read image "${path}": ${e.code === 'ENOENT' ? 'no such file' : e.message}`,
      {
        hint: '--image names the raw image the seed is for; or give --network-version 1 or 2',
        cause: e,
      },
    )
  })
  if (st.isDirectory())
    throw new UsageError(`Cannot read image "${path}": it is a directory`, {
      hint: '--image names a raw image file (NAME.img)',
    })
}

async function checkFreeSpace(path: string, bytes: number): Promise<void> {
  const dir = dirname(resolve(path))
  const s = await statfs(dir)
  // An existing output is replaced: its blocks come back.
  const old = await stat(path).then(
    (st) => st.blocks * 512,
    () => 0,
  )
  const free = s.bavail * s.bsize + old
  if (free < bytes) {
    throw new InputError(
      'TARGET_TOO_SMALL',
      `Cannot write seed to "${path}": the file system has ${formatBytes(free)} free, the volume is ${formatBytes(bytes)}`,
      {
        hint: 'write it elsewhere, or give a smaller --size (16M holds every seed)',
      },
    )
  }
}
