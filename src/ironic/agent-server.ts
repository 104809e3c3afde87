// The agent's own API, which Ironic's conductor calls (agent_client.py):
//   GET  /                                   versions (IPA answers { versions: [{ id: 'v1' }] })
//   GET  /v1/commands/                       { commands: [record, …] }
//   GET  /v1/commands/{id}                   one record
//   POST /v1/commands/?wait=true|false&agent_token=T   body { name, params } → the record
// Refusals carry `faultstring` (Ironic reads it): 401 wrong token, 404 unknown command,
// 409 busy (Ironic retries: AgentInProgress), 400 bad body.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { CommandRefused, type CommandStore } from './commands.js'

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) })
  res.end(text)
}

const fault = (res: ServerResponse, status: number, message: string) =>
  send(res, status, { faultcode: status >= 500 ? 'Server' : 'Client', faultstring: message })

async function bodyOf(req: IncomingMessage, limit = 64 * 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of req) {
    n += (c as Buffer).length
    if (n > limit) throw new CommandRefused(413, `request body larger than ${limit} bytes`)
    chunks.push(c as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** The agent API over `store`; `token()` is the agent token Ironic must present on POST (undefined: none yet). */
export function agentServer(store: CommandStore, token: () => string | undefined, log: (l: string) => void): Server {
  return createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://agent')
      const p = url.pathname.replace(/\/+$/, '')
      try {
        if (req.method === 'GET' && p === '') return send(res, 200, { name: 'hwimage', versions: [{ id: 'v1' }] })
        if (req.method === 'GET' && p === '/v1/commands') return send(res, 200, { commands: store.records })
        if (req.method === 'GET' && p.startsWith('/v1/commands/')) {
          const rec = store.records.find((r) => r.id === p.slice('/v1/commands/'.length))
          return rec ? send(res, 200, rec) : fault(res, 404, 'No such command')
        }
        if (req.method === 'POST' && p === '/v1/commands') {
          const want = token()
          if (want !== undefined && url.searchParams.get('agent_token') !== want)
            return fault(res, 401, 'Invalid or missing agent_token')
          let body: { name?: unknown; params?: unknown }
          try {
            body = JSON.parse(await bodyOf(req)) as typeof body
          } catch (e) {
            if (e instanceof CommandRefused) throw e
            return fault(res, 400, 'The body is not JSON: expected {"name": …, "params": {…}}')
          }
          if (typeof body?.name !== 'string') return fault(res, 400, 'The body names no command ("name")')
          const params = body.params && typeof body.params === 'object' ? (body.params as Record<string, unknown>) : {}
          const wait = url.searchParams.get('wait') === 'true'
          log(`command ${body.name}${wait ? ' (wait)' : ''}`)
          const rec = await store.execute(body.name, params, wait)
          return send(res, 200, rec)
        }
        return fault(res, 404, `No route ${req.method} ${url.pathname}`)
      } catch (e) {
        if (e instanceof CommandRefused) return fault(res, e.status, e.message)
        return fault(res, 500, (e as Error).message)
      }
    })()
  })
}
