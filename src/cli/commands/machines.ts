// `hwimage machines list|show|assign|redeploy|delete`: a client of serve's operator API
// (docs/deploy.md), nothing more — the server is the one source of truth.

import type { DeployPhases } from '../../serve/deploy-phases.js'
import { promises as fsp } from 'node:fs'
import { HwimageError, InputError, UsageError } from '../../errors.js'
import { parseVerbArgs, type Command } from '../command.js'

const HELP = `Usage: hwimage machines SUBCOMMAND [options]

The machines of a running \`hwimage serve\`, through its JSON API.

Subcommands:
  list                       every machine: MAC, name, state, image, last change
  show MAC                   one machine, with its inventory summary and events
  assign MAC --image NAME    install NAME on it (creates the machine when new)
      [--seed SEED.yaml] [--disk-hint KEY=VALUE]... [--name NAME]
  redeploy MAC               send it back to the deploy environment (new token)
  delete MAC                 forget it

Options:
      --server URL           serve's URL (default: $HWIMAGE_SERVER, else http://127.0.0.1:8080)
      --token-file FILE      the operator token (default: $HWIMAGE_OPERATOR_TOKEN; not
                             needed from the server's own host when the config has none)
      --json                 print the API's JSON answer
  -h, --help                 this help

Examples:
  hwimage machines list
  hwimage machines assign 52:54:00:12:34:56 --image default --seed node-1.yaml --disk-hint size=>=100G
  HWIMAGE_SERVER=http://10.0.0.5:8080 HWIMAGE_OPERATOR_TOKEN=… hwimage machines show 52:54:00:12:34:56 --json

Exit codes: 0 ok, 1 server unreachable or failed, 2 refused (unknown machine, bad request, not allowed).
`

interface Machine {
  mac: string
  name: string
  state: string
  image: string | null
  updated: string
  hasSeed: boolean
  diskHints: string[]
  stateTimes: Record<string, string>
  error: { code?: string; message?: string } | null
  inventory: { firmware: string; cpus: number; memoryBytes: number; disks: unknown[]; nics: unknown[] } | null
  progress: { stage?: string; done?: number; total?: number } | null
}

/** `hwimage machines`. */
export const machinesCommand: Command = {
  name: 'machines',
  help: HELP,
  async run(argv, ctx) {
    const args = parseVerbArgs(
      this,
      argv,
      {
        server: { type: 'string' },
        'token-file': { type: 'string' },
        json: { type: 'boolean' },
        image: { type: 'string' },
        seed: { type: 'string' },
        'disk-hint': { type: 'string', multiple: true },
        name: { type: 'string' },
      },
      ctx,
    )
    if (!args) return 0
    const v = args.values as Record<string, string | boolean | string[] | undefined>
    const [sub, mac, ...rest] = args.positionals
    if (rest.length || (sub === 'list' && mac !== undefined))
      throw new UsageError(`Cannot run "machines ${sub}": unexpected "${rest[0] ?? mac}"`, {
        hint: 'see `hwimage machines --help`',
      })
    const server = (
      typeof v.server === 'string' ? v.server : (process.env.HWIMAGE_SERVER ?? 'http://127.0.0.1:8080')
    ).replace(/\/+$/, '')
    const token =
      typeof v['token-file'] === 'string'
        ? (await fsp.readFile(v['token-file'], 'utf8')).trim()
        : process.env.HWIMAGE_OPERATOR_TOKEN
    const api = (method: string, path: string, body?: unknown) => call(server, token, method, path, body)
    const needMac = () => {
      if (!mac)
        throw new UsageError(`Cannot run "machines ${sub}": expected a MAC`, {
          hint: `hwimage machines ${sub} 52:54:00:12:34:56`,
        })
      return encodeURIComponent(mac)
    }
    const out = (doc: unknown, text: () => string) =>
      ctx.stdout.write(v.json ? JSON.stringify(doc, null, 2) + '\n' : text())

    switch (sub) {
      case 'list': {
        const doc = (await api('GET', '/api/v1/machines')) as { machines: Machine[] }
        out(doc, () => table(doc.machines))
        return 0
      }
      case 'show': {
        const doc = (await api('GET', `/api/v1/machines/${needMac()}`)) as {
          machine: Machine
          phases?: DeployPhases
          events: Array<{ time: string; kind: string; fields: unknown }>
        }
        out(doc, () => describe(doc.machine, doc.events, doc.phases))
        return 0
      }
      case 'assign': {
        const m = needMac()
        if (typeof v.image !== 'string')
          throw new UsageError('Cannot assign: --image NAME is required', {
            hint: 'hwimage machines assign MAC --image default',
          })
        const seedYaml = typeof v.seed === 'string' ? await readSeed(v.seed) : undefined
        const hints = Array.isArray(v['disk-hint']) ? (v['disk-hint'] as string[]) : undefined
        const doc = (await api('POST', `/api/v1/machines/${m}/assign`, {
          image: v.image,
          ...(seedYaml !== undefined ? { seed_yaml: seedYaml } : {}),
          ...(hints ? { disk_hints: hints } : {}),
          ...(typeof v.name === 'string' ? { name: v.name } : {}),
        })) as { machine: Machine }
        out(
          doc,
          () =>
            `${doc.machine.mac}: ${doc.machine.state}, image ${doc.machine.image ?? '-'}${doc.machine.hasSeed ? ', with a seed' : ''}\n`,
        )
        return 0
      }
      case 'redeploy': {
        const doc = (await api('POST', `/api/v1/machines/${needMac()}/redeploy`, {})) as { machine: Machine }
        out(doc, () => `${doc.machine.mac}: ${doc.machine.state}\n`)
        return 0
      }
      case 'delete': {
        const doc = await api('DELETE', `/api/v1/machines/${needMac()}`)
        out(doc, () => `${mac}: deleted\n`)
        return 0
      }
      default:
        throw new UsageError(
          sub ? `Cannot run "machines ${sub}": unknown subcommand` : 'Cannot run "machines": expected a subcommand',
          { hint: 'list, show, assign, redeploy or delete' },
        )
    }
  },
}

async function readSeed(file: string): Promise<string> {
  try {
    return await fsp.readFile(file, 'utf8')
  } catch (e) {
    throw new InputError(
      'NOT_FOUND',
      `Cannot read seed "${file}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    )
  }
}

/** One API call; the server's refusals become errors with its message and hint. */
async function call(
  server: string,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  let res: Response
  try {
    res = await fetch(server + path, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    })
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message
    throw new HwimageError('NETWORK', `Cannot reach serve at ${server}: ${cause}`, {
      hint: 'is `hwimage serve` running? set --server or HWIMAGE_SERVER',
      cause: e,
    })
  }
  const text = await res.text()
  let doc: { error?: { message?: string; hint?: string } } & Record<string, unknown>
  try {
    doc = JSON.parse(text) as typeof doc
  } catch {
    throw new HwimageError('NETWORK', `Cannot read the answer of ${server}${path}: HTTP ${res.status}, not JSON`)
  }
  if (res.ok) return doc
  const message = doc.error?.message ?? `HTTP ${res.status}`
  if (res.status === 404) throw new InputError('NOT_FOUND', message, { hint: doc.error?.hint })
  if (res.status === 401 || res.status === 403)
    throw new UsageError(message, {
      hint: "set HWIMAGE_OPERATOR_TOKEN or --token-file to the config's operator_token, or run on the server's host",
    })
  if (res.status < 500) throw new UsageError(message, { hint: doc.error?.hint })
  throw new HwimageError('NETWORK', `${message} (HTTP ${res.status})`)
}

function table(machines: Machine[]): string {
  const rows = [
    ['MAC', 'NAME', 'STATE', 'IMAGE', 'UPDATED'],
    ...machines.map((m) => [m.mac, m.name, m.state, m.image ?? '-', m.updated]),
  ]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n'
}

function describe(
  m: Machine,
  events: Array<{ time: string; kind: string; fields: unknown }>,
  phases?: DeployPhases,
): string {
  const lines = [
    `${m.mac}  ${m.name}`,
    `  state:      ${m.state}${m.error?.code ? ` (${m.error.code}: ${m.error.message ?? ''})` : ''}`,
    `  image:      ${m.image ?? '-'}${m.hasSeed ? ', with a seed' : ''}`,
    `  disk hints: ${m.diskHints.join(' ') || '-'}`,
  ]
  if (m.inventory)
    lines.push(
      `  inventory:  ${m.inventory.firmware}, ${m.inventory.cpus} CPUs, ${(m.inventory.memoryBytes / 2 ** 30).toFixed(1)} GiB, ${m.inventory.disks.length} disks, ${m.inventory.nics.length} NICs`,
    )
  if (m.progress?.stage)
    lines.push(
      `  progress:   ${m.progress.stage} ${m.progress.done ?? 0}${m.progress.total ? `/${m.progress.total}` : ''}`,
    )
  for (const [state, time] of Object.entries(m.stateTimes)) lines.push(`  ${(state + ':').padEnd(11)} ${time}`)
  const phaseText = Object.entries(phases?.seconds ?? {}).map(([k, v]) => `${k} ${v} s`)
  if (phaseText.length) lines.push(`  phases:     ${phaseText.join(', ')}`)
  lines.push('  events:')
  for (const e of events.slice(-20)) lines.push(`    ${e.time}  ${e.kind}  ${JSON.stringify(e.fields)}`)
  return lines.join('\n') + '\n'
}
