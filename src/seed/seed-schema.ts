// The seed file: the operator's view of first-boot data (contract hwimage-seed/1,
// docs/first-boot-contract.md). YAML in, a validated and normalized `Seed` out;
// every error names the field path, e.g. `network.ethernets[1].mac`.

import { parseDocument } from 'yaml'
import { toCloudInitYaml } from './cloud-yaml.js'
import { z } from 'zod'
import { InputError } from '../errors.js'
import { resolveNetwork, type SeedNetwork } from './seed-network.js'
import {
  bondModes,
  cidr,
  cryptHash,
  fqdn,
  hostname,
  instanceId,
  ifName,
  ipAddress,
  ipv4,
  ipv6,
  mac,
  sshAuthorizedKey,
  unixGroup,
  unixName,
} from './seed-fields.js'

/** The two volume layouts cloud-init reads without a network. */
export const SEED_FORMATS = ['nocloud', 'configdrive'] as const
/** A volume layout: NoCloud `CIDATA` or OpenStack `config-2`. */
export type SeedFormat = (typeof SEED_FORMATS)[number]

/** One login to create on first boot. */
export interface SeedUser {
  name: string
  sshAuthorizedKeys: string[]
  /** Passwordless sudo. */
  sudo: boolean
  groups: string[]
  /** A crypt(3) hash; absent means the password is locked. */
  passwordHash?: string
  shell: string
}

/** The validated, normalized seed. */
export interface Seed {
  hostname?: string
  fqdn?: string
  /** Absent means a fresh UUID for every volume made. */
  instanceId?: string
  users: SeedUser[]
  network?: SeedNetwork
  /** Opaque user-data, passed through byte for byte. */
  userData?: string
  vendorData?: string
  report?: { url: string; token?: string }
  format: SeedFormat
  cleanup: boolean
}

/** The largest volume a seed is written to: the seed partition (16 MiB). */
export const SEED_VOLUME_BYTES = 16 * 1024 * 1024
/** What a 16 MiB FAT needs for itself and for hwimage's own files, kept off the user's budget. */
const VOLUME_RESERVE_BYTES = 512 * 1024

// A mapping given where text is expected becomes a #cloud-config document: handy
// in YAML, and unambiguous (cloud-init would need the header anyway).
const cloudText = z.union([z.string(), z.record(z.string(), z.unknown())], {
  error: 'must be text (cloud-config, a script, MIME multipart) or a mapping',
})

const addressing = {
  dhcp4: z.boolean().default(false),
  dhcp6: z.boolean().default(false),
  addresses: z.array(cidr).default([]),
  gateway4: ipv4.optional(),
  gateway6: ipv6.optional(),
  nameservers: z
    .union(
      [
        z.array(ipAddress),
        z.strictObject({ addresses: z.array(ipAddress).default([]), search: z.array(fqdn).default([]) }),
      ],
      {
        error: 'must be a list of addresses, or {addresses: […], search: […]}',
      },
    )
    .optional(),
  mtu: z.number().int().min(576, 'must be at least 576').max(65535, 'must be at most 65535').optional(),
}

const ethernetSchema = z.strictObject({ mac, name: ifName.optional(), ...addressing })
const bondSchema = z.strictObject({
  name: ifName,
  interfaces: z.array(mac).min(1, 'needs at least one MAC address'),
  mode: z.enum(bondModes, { error: `must be one of ${bondModes.join(', ')}` }).default('active-backup'),
  miimon: z.number().int().min(0).optional(),
  lacp_rate: z.enum(['slow', 'fast']).optional(),
  xmit_hash_policy: z.enum(['layer2', 'layer2+3', 'layer3+4', 'encap2+3', 'encap3+4']).optional(),
  primary: mac.optional(),
  ...addressing,
})
const vlanSchema = z.strictObject({
  name: ifName.optional(),
  id: z.number().int().min(1, 'must be 1 to 4094').max(4094, 'must be 1 to 4094'),
  link: z.string().min(1),
  ...addressing,
})

/** The raw shape of the YAML, as zod checks it. */
export const seedSchema = z.strictObject({
  hostname: hostname.optional(),
  fqdn: fqdn.optional(),
  instance_id: instanceId.optional(),
  users: z
    .array(
      z.strictObject({
        name: unixName,
        ssh_authorized_keys: z.array(sshAuthorizedKey).default([]),
        sudo: z.boolean().default(false),
        groups: z.array(unixGroup).default([]),
        password_hash: cryptHash.optional(),
        shell: z
          .string()
          .regex(/^\/\S+$/, 'must be an absolute path such as /bin/bash')
          .default('/bin/bash'),
      }),
    )
    .default([]),
  network: z
    .strictObject({
      ethernets: z.array(ethernetSchema).default([]),
      bonds: z.array(bondSchema).default([]),
      vlans: z.array(vlanSchema).default([]),
    })
    .optional(),
  user_data: cloudText.optional(),
  vendor_data: cloudText.optional(),
  report: z
    .strictObject({
      url: z.string().refine(isHttpUrl, 'must be an http:// or https:// URL'),
      token: z.string().min(1).optional(),
    })
    .optional(),
  format: z.enum(SEED_FORMATS, { error: `must be one of ${SEED_FORMATS.join(', ')}` }).default('nocloud'),
  cleanup: z.boolean().default(false),
})

/** The seed as zod returns it: snake_case, defaults filled, not yet cross-checked. */
export type RawSeed = z.output<typeof seedSchema>

/** A problem at a field path; collected, then thrown as one InputError. */
export interface SeedProblem {
  path: (string | number)[]
  message: string
}

/** Parses and validates seed YAML; throws InputError('SEED_INVALID') naming the field. */
export function parseSeed(yamlText: string, sourceName = 'seed'): Seed {
  const doc = parseDocument(yamlText, { uniqueKeys: true, prettyErrors: true })
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!
    const where = e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}: ` : ''
    throw new InputError('SEED_INVALID', `Cannot parse seed "${sourceName}": ${where}${e.message.split('\n')[0]}`)
  }
  const data: unknown = doc.toJS() ?? {}
  return validateSeed(data, sourceName)
}

/** Validates an already-parsed seed object (e.g. from JSON); same errors as parseSeed. */
export function validateSeed(data: unknown, sourceName = 'seed'): Seed {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new InputError('SEED_INVALID', `Cannot read seed "${sourceName}": expected a mapping at the top level`)
  }
  const parsed = seedSchema.safeParse(data)
  if (!parsed.success) {
    const problems = parsed.error.issues.map(issueToProblem)
    throw seedError(sourceName, problems)
  }
  const problems: SeedProblem[] = []
  const seed = normalize(parsed.data, problems)
  if (problems.length > 0) throw seedError(sourceName, problems)
  return seed
}

/** Formats a field path as the seed's YAML spells it: `network.ethernets[1].mac`. */
export function formatPath(path: readonly (string | number | symbol)[]): string {
  let out = ''
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`
    else out += out ? `.${String(p)}` : String(p)
  }
  return out || '(top level)'
}

function issueToProblem(issue: z.core.$ZodIssue): SeedProblem {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol')
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!
    const more =
      issue.keys.length > 1
        ? ` (also ${issue.keys
            .slice(1)
            .map((k) => `"${k}"`)
            .join(', ')})`
        : ''
    return { path: [...path, key], message: `unknown key${more}` }
  }
  if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) {
    return { path, message: 'is required' }
  }
  if (issue.code === 'invalid_type') {
    return {
      path,
      message: `must be ${article(issue.expected)}${/received (\w+)/.exec(issue.message)?.[1] ? `, not ${/received (\w+)/.exec(issue.message)![1]}` : ''}`,
    }
  }
  if (issue.code === 'invalid_union') {
    // A branch whose shape matched but whose content did not says more than the union.
    const inner = issue.errors.find((branch) => branch.length > 0 && branch.every((i) => i.path.length > 0))
    if (inner) return issueToProblem({ ...inner[0]!, path: [...issue.path, ...inner[0]!.path] } as z.core.$ZodIssue)
    return { path, message: issue.message }
  }
  return { path, message: issue.message }
}

function article(expected: string): string {
  const names: Record<string, string> = { int: 'an integer', array: 'a list', object: 'a mapping', record: 'a mapping' }
  return names[expected] ?? `a ${expected}`
}

function seedError(sourceName: string, problems: SeedProblem[]): InputError {
  const [first, ...rest] = problems
  const others = rest.length ? ` (and ${rest.length} more: ${rest.map((p) => formatPath(p.path)).join(', ')})` : ''
  const err = new InputError(
    'SEED_INVALID',
    `Cannot use seed "${sourceName}": ${formatPath(first!.path)}: ${first!.message}${others}`,
    { hint: 'see docs/first-boot-contract.md for the seed schema' },
  )
  ;(err as InputError & { problems: SeedProblem[] }).problems = problems
  return err
}

function normalize(raw: RawSeed, problems: SeedProblem[]): Seed {
  if (raw.hostname && raw.fqdn && raw.fqdn.split('.')[0]!.toLowerCase() !== raw.hostname.toLowerCase()) {
    problems.push({ path: ['fqdn'], message: `must start with the hostname "${raw.hostname}"` })
  }
  const seenUsers = new Map<string, number>()
  raw.users.forEach((u, i) => {
    const j = seenUsers.get(u.name)
    if (j !== undefined)
      problems.push({ path: ['users', i, 'name'], message: `duplicate user "${u.name}" (also users[${j}])` })
    else seenUsers.set(u.name, i)
  })
  const userData = cloudTextToString(raw.user_data)
  const vendorData = cloudTextToString(raw.vendor_data)
  const budget = SEED_VOLUME_BYTES - VOLUME_RESERVE_BYTES
  for (const [key, text] of [
    ['user_data', userData],
    ['vendor_data', vendorData],
  ] as const) {
    const size = text === undefined ? 0 : Buffer.byteLength(text, 'utf8')
    if (size > budget) {
      problems.push({
        path: [key],
        message: `is ${size} bytes, larger than the ${SEED_VOLUME_BYTES / 1024 / 1024} MiB seed volume can hold (${budget} bytes)`,
      })
    }
  }
  const both = Buffer.byteLength(userData ?? '') + Buffer.byteLength(vendorData ?? '')
  if (both > budget && Buffer.byteLength(userData ?? '') <= budget && Buffer.byteLength(vendorData ?? '') <= budget) {
    problems.push({
      path: ['user_data'],
      message: `and vendor_data together are ${both} bytes, larger than the seed volume can hold (${budget} bytes)`,
    })
  }
  const network = raw.network ? resolveNetwork(raw.network, problems) : undefined
  const seed: Seed = {
    users: raw.users.map((u) => ({
      name: u.name,
      sshAuthorizedKeys: u.ssh_authorized_keys,
      sudo: u.sudo,
      groups: u.groups,
      ...(u.password_hash !== undefined ? { passwordHash: u.password_hash } : {}),
      shell: u.shell,
    })),
    format: raw.format,
    cleanup: raw.cleanup,
  }
  const hn = raw.hostname ?? raw.fqdn?.split('.')[0]
  if (hn !== undefined) seed.hostname = hn
  if (raw.fqdn !== undefined) seed.fqdn = raw.fqdn
  if (raw.instance_id !== undefined) seed.instanceId = raw.instance_id
  if (network !== undefined) seed.network = network
  if (userData !== undefined) seed.userData = userData
  if (vendorData !== undefined) seed.vendorData = vendorData
  if (raw.report) seed.report = { url: raw.report.url, ...(raw.report.token ? { token: raw.report.token } : {}) }
  return seed
}

function cloudTextToString(v: string | Record<string, unknown> | undefined): string | undefined {
  if (v === undefined || typeof v === 'string') return v
  return `#cloud-config\n${toCloudInitYaml(v)}`
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s)
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== ''
  } catch {
    return false
  }
}
