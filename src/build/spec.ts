// The build spec: what image to make. YAML, validated strictly — an unknown key, a
// wrong type, an unknown release or flavor, or an architecture other than amd64 is
// an InputError (exit 2) naming the field, as is a size above the maximum or a
// root_size the image has no room for. Sizes the content outgrows are caught after
// the root filesystem is known (see layout.ts), also naming the field; the output
// directory, files[].source and the module names are checked before the first long
// step (preflight.ts, spec-modules.ts).

import { parse as parseYaml, YAMLParseError } from 'yaml'
import { z } from 'zod'
import { InputError } from '../errors.js'
import { FIXED_BYTES, MiB, alignUp } from './layout.js'

/** Releases hwimage can build, with the Debian version and the security suite. */
export const RELEASES = {
  bookworm: { version: '12', security: 'bookworm-security', updates: 'bookworm-updates' },
} as const

/** Kernel flavors: the package each installs (server prunes the generic kernel). */
export const FLAVORS = {
  generic: 'linux-image-amd64',
  cloud: 'linux-image-cloud-amd64',
  server: 'linux-image-amd64',
} as const

export type Release = keyof typeof RELEASES
export type Flavor = keyof typeof FLAVORS

const SIZE_RE = /^\d+(\.\d+)?\s*([KMGT]i?B?)?$/i

const size = z
  .union([z.number().int().positive(), z.string().regex(SIZE_RE, 'expected a size such as 2G, 1536M or a byte count')])
  .transform((v) => parseSizeBytes(v))

const file = z.strictObject({
  path: z
    .string()
    .startsWith('/', 'expected an absolute path inside the image')
    // A ".." would write outside the staged tree; a directory path has no file to write.
    .refine(
      (p) =>
        !p
          .split('/')
          .slice(1)
          .some((seg) => seg === '' || seg === '.' || seg === '..'),
      'expected a file path without "..", "." or empty parts, not ending in "/"',
    ),
  content: z.string().optional(),
  source: z.string().optional(),
  mode: z
    .string()
    .regex(/^0?[0-7]{3,4}$/, 'expected an octal mode such as "0644"')
    .optional(),
})

const schema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'expected letters, digits, ".", "_" or "-"')
    .optional(),
  release: z.enum(Object.keys(RELEASES) as [Release, ...Release[]]).default('bookworm'),
  architecture: z.literal('amd64', { message: 'only amd64 is supported' }).default('amd64'),
  kernel: z
    .strictObject({
      flavor: z.enum(Object.keys(FLAVORS) as [Flavor, ...Flavor[]]).default('server'),
      modules: z
        .strictObject({
          add: z.array(z.string().min(1)).default([]),
          remove: z.array(z.string().min(1)).default([]),
        })
        .default({ add: [], remove: [] }),
    })
    .default({ flavor: 'server', modules: { add: [], remove: [] } }),
  packages: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/, 'expected a Debian package name')).default([]),
  files: z
    .array(
      file.refine(
        (f) => (f.content === undefined) !== (f.source === undefined),
        'give exactly one of content or source',
      ),
    )
    .default([]),
  size: z.union([z.literal('fit'), size]).default(2 * 1024 ** 3),
  root_size: z.union([z.literal('fill'), z.literal('fit'), size]).default('fill'),
  mirror: z.url({ protocol: /^https?$/ }).default('http://deb.debian.org/debian'),
  security_mirror: z.url({ protocol: /^https?$/ }).default('http://deb.debian.org/debian-security'),
  cache: z.union([z.string().min(1), z.null()]).default('/var/cache/hwimage/apt'),
  // NAME.qcow2 beside the raw image: its cluster compression, or false for none (qcow2-output.ts).
  qcow2: z.union([z.enum(['zstd', 'zlib']), z.literal(false)]).default('zstd'),
})

/** A validated build spec with every default filled in. */
export type BuildSpec = z.output<typeof schema> & { name: string }

/** The spec used when `hwimage build` gets none. */
export const DEFAULT_SPEC_YAML = `# hwimage's default image: Debian 12, cloud-init, UEFI (Secure Boot) and BIOS, server kernel.
release: bookworm
architecture: amd64
kernel:
  flavor: server      # Debian's generic kernel cut to the server module set (docs/server-kernel.md)
size: 2G
root_size: fill
`

/** Parses and validates a spec's YAML text; `source` names it in errors. */
export function parseSpec(text: string, source = 'spec'): BuildSpec {
  let data: unknown
  try {
    data = parseYaml(text, { prettyErrors: true }) ?? {}
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? ` at line ${e.linePos[0].line}` : ''
    throw new InputError('SPEC_INVALID', `Cannot parse ${source}: malformed YAML${where}`, {
      hint: 'fix the YAML syntax; see docs/build.md for the spec format',
      cause: e,
    })
  }
  return validateSpec(data, source)
}

/** Validates an already-parsed spec object. */
export function validateSpec(data: unknown, source = 'spec'): BuildSpec {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new InputError(
      'SPEC_INVALID',
      `Cannot read ${source}: expected a mapping of keys, got ${Array.isArray(data) ? 'a list' : typeof data}`,
      {
        hint: 'see docs/build.md for the spec format',
      },
    )
  }
  const result = schema.safeParse(data)
  if (!result.success) {
    const issue = result.error.issues[0]!
    const field = formatPath(issue.path)
    let message = issue.message
    if (issue.code === 'unrecognized_keys') {
      const keys = (issue as { keys: string[] }).keys
      const at = field ? `${field}.` : ''
      throw new InputError('SPEC_INVALID', `Invalid ${source}: unknown key "${at}${keys[0]}"`, {
        hint: `remove it; known keys are listed in docs/build.md`,
      })
    }
    if (issue.code === 'invalid_value' && 'values' in issue && /^Invalid/.test(message))
      message = `expected one of ${(issue.values as unknown[]).map((v) => `"${String(v)}"`).join(', ')}`
    throw new InputError('SPEC_INVALID', `Invalid ${source}: field "${field || '(root)'}": ${message}`, {
      hint: 'see docs/build.md for the spec format',
    })
  }
  const spec = result.data
  const name = spec.name ?? `debian-${RELEASES[spec.release].version}-${spec.kernel.flavor}-${spec.architecture}`
  if (spec.size !== 'fit' && spec.size < MIN_IMAGE_BYTES) {
    throw new InputError(
      'SPEC_INVALID',
      `Invalid ${source}: field "size": ${spec.size} bytes is smaller than the ${MIN_IMAGE_BYTES / 1024 ** 2} MiB minimum`,
      {
        hint: 'the boot partitions alone take 105 MiB; use at least 1G, or "fit"',
      },
    )
  }
  checkSizeLimits(spec, source)
  if (
    spec.kernel.flavor !== 'server' &&
    (spec.kernel.modules.add.length > 0 || spec.kernel.modules.remove.length > 0)
  ) {
    throw new InputError(
      'SPEC_INVALID',
      `Invalid ${source}: field "kernel.modules": module changes apply to the "server" flavor only, and the flavor is "${spec.kernel.flavor}"`,
      {
        hint: `remove kernel.modules, or use flavor: server (the "${spec.kernel.flavor}" flavor installs every module its package has)`,
      },
    )
  }
  return { ...spec, name }
}

/** The smallest image hwimage makes: boot partitions plus a minimal root. */
export const MIN_IMAGE_BYTES = 512 * 1024 ** 2

/**
 * The largest image hwimage makes: 1 TiB. An image needs room only for its content
 * (the root partition and filesystem grow to the disk on first boot, cloud-guest-utils'
 * growpart), while every byte of it costs: mkfs.ext4 writes the inode tables (1/64 of
 * the root filesystem) and the journal as real zeros (src/tools/mkfs.ts), and the .zst
 * step reads and compresses the holes too — 21 s per GiB of holes on the 2-core
 * development machine, so a 1 TiB image already takes hours there.
 */
export const MAX_IMAGE_BYTES = 1024 ** 4

// Sizes that can be judged from the spec alone, before anything is downloaded.
function checkSizeLimits(spec: z.output<typeof schema>, source: string): void {
  if (spec.size !== 'fit' && alignUp(spec.size) > MAX_IMAGE_BYTES) {
    throw new InputError(
      'SPEC_INVALID',
      `Invalid ${source}: field "size": ${formatSize(spec.size)} is larger than the ${formatSize(MAX_IMAGE_BYTES)} maximum`,
      {
        hint: 'the root filesystem grows to the disk on first boot, so the image needs only its content: use "fit", or a size of at most 1T (docs/build.md "Sizes")',
      },
    )
  }
  if (typeof spec.root_size !== 'number') return
  const room = (spec.size === 'fit' ? MAX_IMAGE_BYTES : alignUp(spec.size)) - FIXED_BYTES
  if (alignUp(spec.root_size) > room) {
    const of =
      spec.size === 'fit'
        ? `the ${formatSize(MAX_IMAGE_BYTES)} maximum image`
        : `size ${formatSize(alignUp(spec.size))}`
    throw new InputError(
      'SPEC_INVALID',
      `Invalid ${source}: field "root_size": ${formatSize(spec.root_size)} is larger than the ${formatSize(room)} that ${of} leaves for the root partition (${FIXED_BYTES / MiB} MiB go to the GPT, BIOS boot and EFI partitions)`,
      { hint: `use a root_size of at most ${room / MiB}M, "fill", or a larger size` },
    )
  }
}

/** "2 GiB", "100 TiB", "1942 MiB": the largest unit that holds the size exactly, else MiB (or bytes below 1 MiB). */
export function formatSize(bytes: number): string {
  for (const [unit, mult] of [
    ['TiB', 1024 ** 4],
    ['GiB', 1024 ** 3],
  ] as const) {
    if (bytes >= mult && bytes % mult === 0) return `${bytes / mult} ${unit}`
  }
  if (bytes < MiB) return `${bytes} bytes`
  const m = bytes / MiB
  return `${Number.isInteger(m) ? m : m.toFixed(1)} MiB`
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('')
}

/** "2G" → 2147483648; powers of 1024, with or without "iB". */
export function parseSizeBytes(v: number | string): number {
  if (typeof v === 'number') return v
  const m = SIZE_RE.exec(v.trim())!
  const unit = (m[2] ?? '').charAt(0).toUpperCase()
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[unit] ?? 1
  return Math.round(parseFloat(v) * mult)
}
