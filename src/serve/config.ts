// CONFIG.yaml of `hwimage serve`: where to listen, the URL machines reach, the state
// directory, the images (build output directories), the deploy environment, the TFTP
// root, the machines (MAC → name, image, seed, disk hints), what to do with an unknown
// MAC, and the operator token. Validated like the build spec and the seed: an invalid
// file is CONFIG_INVALID (exit 2) naming the field. Relative paths are relative to the
// config file's directory. docs/deploy.md has the format.

import { promises as fsp, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { parse as parseYaml, YAMLParseError } from 'yaml'
import { z } from 'zod'
import { HwimageError, InputError } from '../errors.js'
import { parseDiskHints, type DiskHints } from '../install/disk-hints.js'
import { parseSeed } from '../seed/seed-schema.js'
import { normalizeMac } from './mac.js'
import type { ServeCatalogConfig } from './serve-images.js'

/** An image serve offers: a build output directory and its files. */
export interface ServeImage {
  name: string
  dir: string
  /** The compressed image's file name in `dir`, e.g. "debian-12-server-amd64.img.zst". */
  file: string
}

/** A machine the config names. */
export interface ConfiguredMachine {
  mac: string
  name: string
  image?: string
  /** The seed YAML path and its text (read and validated at load). */
  seedPath?: string
  seedYaml?: string
  /** Disk hints in `--disk-hint` syntax, and parsed. */
  diskHints: string[]
  parsedHints?: DiskHints
}

/** The validated config. */
export interface ServeConfig {
  source: string
  listen: { host: string; port: number }
  /** The base URL machines reach serve at (no trailing slash), e.g. "http://10.0.2.2:8080". */
  publicUrl: string
  stateDir: string
  deployDir?: string
  tftpRoot?: string
  images: Map<string, ServeImage>
  /** A catalog whose versions are offered beside `images` (serve-images.ts). */
  catalog?: ServeCatalogConfig
  machines: Map<string, ConfiguredMachine>
  unknownMacs: 'enlist' | 'ignore'
  /** Undefined: the operator API answers requests from the loopback address only. */
  operatorToken?: string
  /** Extra arguments for the deploy environment's kernel command line (e.g. "console=ttyS0,115200n8"). */
  kernelArgs: string
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

const schema = z
  .object({
    listen: z
      .object({
        host: z.string().min(1).default('0.0.0.0'),
        port: z.number().int().min(0).max(65535).default(8080),
      })
      .strict()
      .default({ host: '0.0.0.0', port: 8080 }),
    public_url: z
      .string()
      .refine(
        (u) => /^https?:\/\/[^/\s]+(\/[^\s]*)?$/.test(u),
        'expected an http:// or https:// URL that the machines reach, e.g. http://10.0.2.2:8080',
      ),
    state_dir: z.string().min(1),
    deploy_dir: z.string().min(1).optional(),
    tftp_root: z.string().min(1).optional(),
    images: z
      .record(
        z.string().regex(NAME_RE, 'expected an image name of letters, digits, ".", "_" or "-"'),
        z.string().min(1),
      )
      .default({}),
    catalog: z
      .object({
        dir: z.string().min(1),
        keyring: z.string().min(1).optional(),
        insecure: z.boolean().optional(),
      })
      .strict()
      .optional(),
    machines: z
      .record(
        z.string(),
        z
          .object({
            name: z.string().regex(NAME_RE, 'expected a name of letters, digits, ".", "_" or "-"').optional(),
            image: z.string().optional(),
            seed: z.string().min(1).optional(),
            disk_hints: z.union([z.string(), z.array(z.string())]).optional(),
          })
          .strict(),
      )
      .default({}),
    unknown_macs: z.enum(['enlist', 'ignore']).default('ignore'),
    operator_token: z.string().min(16, 'expected at least 16 characters (e.g. `openssl rand -hex 32`)').optional(),
    kernel_args: z.string().default(''),
  })
  .strict()

/** Reads and validates CONFIG.yaml; every problem is CONFIG_INVALID (exit 2) naming the field. */
export async function loadServeConfig(file: string): Promise<ServeConfig> {
  let text: string
  try {
    text = await fsp.readFile(file, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT')
      throw new InputError('NOT_FOUND', `Cannot read config "${file}": no such file`, {
        hint: 'see docs/deploy.md for the format',
      })
    throw new InputError('CONFIG_INVALID', `Cannot read config "${file}": ${code ?? (e as Error).message}`, {
      cause: e,
    })
  }
  return parseServeConfig(text, file, path.dirname(path.resolve(file)))
}

/** Parses and validates config text; `baseDir` anchors its relative paths. */
export function parseServeConfig(text: string, source = 'config', baseDir = process.cwd()): ServeConfig {
  let data: unknown
  try {
    data = parseYaml(text, { prettyErrors: true }) ?? {}
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? ` at line ${e.linePos[0].line}` : ''
    throw invalid(source, undefined, `malformed YAML${where}`, e)
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data))
    throw invalid(source, undefined, `expected a mapping of keys, got ${Array.isArray(data) ? 'a list' : typeof data}`)
  const result = schema.safeParse(data)
  if (!result.success) {
    const issue = result.error.issues[0]!
    const field = formatPath(issue.path)
    if (issue.code === 'unrecognized_keys') {
      const keys = (issue as { keys: string[] }).keys
      throw invalid(source, undefined, `unknown key "${field ? `${field}.` : ''}${keys[0]}"`)
    }
    let message = issue.message
    if (issue.code === 'invalid_value' && 'values' in issue && /^Invalid/.test(message))
      message = `expected one of ${(issue.values as unknown[]).map((v) => `"${String(v)}"`).join(', ')}`
    throw invalid(source, field || '(root)', message)
  }
  const raw = result.data
  const abs = (p: string) => path.resolve(baseDir, p)

  const images = new Map<string, ServeImage>()
  for (const [name, dir] of Object.entries(raw.images)) images.set(name, resolveImage(source, name, abs(dir)))
  const catalog = raw.catalog && catalogConfig(source, raw.catalog, abs)

  const machines = new Map<string, ConfiguredMachine>()
  for (const [key, m] of Object.entries(raw.machines)) {
    const mac = normalizeMac(key)
    if (!mac) throw invalid(source, `machines.${key}`, 'expected a MAC address such as "52:54:00:12:34:56" as the key')
    if (machines.has(mac)) throw invalid(source, `machines.${key}`, `the MAC ${mac} is listed twice`)
    // A name the catalog may hold is resolved when serve has read it (startServe).
    if (m.image !== undefined && !images.has(m.image) && !catalog)
      throw invalid(
        source,
        `machines.${key}.image`,
        `no image "${m.image}" in "images" (known: ${[...images.keys()].join(', ') || 'none'})`,
      )
    const diskHints = m.disk_hints === undefined ? [] : Array.isArray(m.disk_hints) ? m.disk_hints : [m.disk_hints]
    let parsedHints: DiskHints | undefined
    if (diskHints.length > 0) {
      try {
        parsedHints = parseDiskHints(diskHints)
      } catch (e) {
        throw invalid(
          source,
          `machines.${key}.disk_hints`,
          (e as Error).message.replace(/^Cannot parse --disk-hint /, ''),
          e,
        )
      }
    }
    let seedPath: string | undefined
    let seedYaml: string | undefined
    if (m.seed !== undefined) {
      seedPath = abs(m.seed)
      seedYaml = readSeed(source, `machines.${key}.seed`, seedPath)
    }
    machines.set(mac, {
      mac,
      name: m.name ?? mac.replace(/:/g, ''),
      image: m.image,
      seedPath,
      seedYaml,
      diskHints,
      parsedHints,
    })
  }

  return {
    source,
    listen: raw.listen,
    publicUrl: raw.public_url.replace(/\/+$/, ''),
    stateDir: abs(raw.state_dir),
    deployDir: raw.deploy_dir === undefined ? undefined : abs(raw.deploy_dir),
    tftpRoot: raw.tftp_root === undefined ? undefined : abs(raw.tftp_root),
    images,
    ...(catalog ? { catalog } : {}),
    machines,
    unknownMacs: raw.unknown_macs,
    operatorToken: raw.operator_token,
    kernelArgs: raw.kernel_args,
  }
}

/** `catalog:` checked: a directory, and a keyring file or `insecure: true` (as `hwimage install --catalog` asks). */
function catalogConfig(
  source: string,
  c: { dir: string; keyring?: string | undefined; insecure?: boolean | undefined },
  abs: (p: string) => string,
): ServeCatalogConfig {
  const dir = abs(c.dir)
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory())
    throw invalid(source, 'catalog.dir', `"${dir}" is not a directory (the one \`hwimage publish --catalog\` writes)`)
  if (c.keyring !== undefined && c.insecure)
    throw invalid(source, 'catalog', 'give keyring or insecure: true, not both')
  if (c.keyring === undefined && !c.insecure)
    throw invalid(
      source,
      'catalog.keyring',
      "missing: name the catalog's public keyring (its streams/v1/keyring.gpg, copied once and pinned), or set insecure: true to offer it unverified",
    )
  if (c.keyring === undefined) return { dir, insecure: true }
  const keyring = abs(c.keyring)
  if (!statSync(keyring, { throwIfNoEntry: false })?.isFile())
    throw invalid(source, 'catalog.keyring', `"${keyring}" is not a file`)
  return { dir, keyring }
}

/** An image directory: its compressed image is manifest.json's NAME.img.zst, or the only *.img.zst there. */
function resolveImage(source: string, name: string, dir: string): ServeImage {
  const field = `images.${name}`
  let entries: string[]
  try {
    entries = readDirSync(dir)
  } catch (e) {
    throw invalid(
      source,
      field,
      `cannot read the build output directory "${dir}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      e,
    )
  }
  let file: string | undefined
  if (entries.includes('manifest.json')) {
    try {
      const manifest = JSON.parse(readTextSync(path.join(dir, 'manifest.json'))) as { name?: unknown }
      if (typeof manifest.name === 'string' && entries.includes(`${manifest.name}.img.zst`))
        file = `${manifest.name}.img.zst`
    } catch (e) {
      throw invalid(source, field, `manifest.json in "${dir}" is not JSON`, e)
    }
  }
  if (file === undefined) {
    const zst = entries.filter((e) => e.endsWith('.img.zst'))
    if (zst.length !== 1)
      throw invalid(
        source,
        field,
        `expected one NAME.img.zst in "${dir}", found ${zst.length ? zst.join(', ') : 'none'}`,
      )
    file = zst[0]!
  }
  return { name, dir, file }
}

function readSeed(source: string, field: string, file: string): string {
  let text: string
  try {
    text = readTextSync(file)
  } catch (e) {
    throw invalid(
      source,
      field,
      `cannot read "${file}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      e,
    )
  }
  try {
    parseSeed(text, file)
  } catch (e) {
    throw invalid(source, field, e instanceof HwimageError ? e.message : String(e), e)
  }
  return text
}

function invalid(source: string, field: string | undefined, message: string, cause?: unknown): InputError {
  return new InputError(
    'CONFIG_INVALID',
    field === undefined
      ? `Invalid config "${source}": ${message}`
      : `Invalid config "${source}": field "${field}": ${message}`,
    {
      hint: 'see docs/deploy.md for the config format',
      cause,
    },
  )
}

function formatPath(p: readonly PropertyKey[]): string {
  return p.map((x, i) => (typeof x === 'number' ? `[${x}]` : `${i ? '.' : ''}${String(x)}`)).join('')
}

// Synchronous reads keep parseServeConfig() a plain function (the config is read once, at start-up).
function readDirSync(dir: string): string[] {
  if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' })
  return readdirSync(dir)
}
function readTextSync(file: string): string {
  return readFileSync(file, 'utf8')
}
