// The deploy environment's and the installed system's routes, each needing the machine's
// token (`Authorization: Bearer TOKEN`, the one on its kernel command line): no token is
// 401, a wrong one (or an unknown MAC) 403, checked before the body is read.
//
//   GET  /api/v1/machines/MAC/task        what to do next (deploy-task.ts)
//   GET  /api/v1/machines/MAC/seed        the seed YAML (secrets: SSH keys, password hashes)
//   POST /api/v1/machines/MAC/inventory   the inventory (inventory-types.ts)
//   POST /api/v1/machines/MAC/progress    {stage, done, total?, rate?}
//   POST /api/v1/machines/MAC/events      {kind, fields}: "installed" (fields.report), "failed" (code, message, logTail)
//   POST /api/v1/machines/MAC/report      the installed system's first-boot report
//
// The POSTs take an Idempotency-Key header (the agent sends "<run id>:<sequence>"): a key
// this machine sent before is answered from the current state, with Idempotent-Replayed:
// true, and changes nothing (state/store.ts applyOnce), so a retried POST never makes a second
// event or a 409 for a move already made.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { eventSchema, firstBootSchema, inventorySchema, progressSchema } from '../api-schemas.js'
import { deployTask, seedForMachine } from '../deploy-task.js'
import { bearerToken, HttpError, idempotencyKey, readJson, sendJson, sendText } from '../http-util.js'
import { normalizeMac } from '../mac.js'
import { preflightMachine } from '../preflight-check.js'
import { API_TIMEOUT, type Route, type RouteContext, type ServeApp } from '../route.js'
import type { ApplyOnce, MachineRecord } from '../state/store.js'

/** The MAC of the path, once the request's token is this machine's; else 400/401/403. */
export function authorizeMachine(req: IncomingMessage, app: ServeApp, rawMac: string): { mac: string; token: string } {
  const mac = normalizeMac(rawMac)
  if (!mac) throw new HttpError(400, 'Cannot use the path: the machine must be a MAC address such as 52:54:00:12:34:56')
  const token = bearerToken(req)
  const check = app.store.checkToken(mac, token)
  if (check === 'missing')
    throw new HttpError(401, "Cannot answer: this route needs the machine's token (Authorization: Bearer …)")
  if (check === 'wrong') throw new HttpError(403, "Cannot answer: the token is not this machine's")
  return { mac, token: token! }
}

const route = (
  methods: string[],
  pattern: string,
  handle: (ctx: RouteContext, mac: string, token: string) => Promise<void>,
): Route => ({
  methods,
  pattern,
  timeout: API_TIMEOUT,
  async handle(ctx) {
    const { mac, token } = authorizeMachine(ctx.req, ctx.app, ctx.params.mac!)
    await handle(ctx, mac, token)
  },
})

export const machineRoutes: Route[] = [
  route(['GET'], '/api/v1/machines/:mac/task', async ({ res, app }, mac) => {
    sendJson(res, 200, deployTask(app.store.get(mac)!, app))
  }),
  route(['GET'], '/api/v1/machines/:mac/seed', async ({ res, app }, mac, token) => {
    const seed = app.store.seedOf(mac)
    if (seed === undefined) throw new HttpError(404, 'Cannot serve the seed: none is assigned to this machine')
    sendText(res, 200, seedForMachine(seed, mac, app.config.publicUrl, token), 'application/yaml; charset=utf-8')
  }),
  route(['POST'], '/api/v1/machines/:mac/inventory', async ({ req, res, app }, mac) => {
    const key = idempotencyKey(req)
    const inventory = await readJson(req, inventorySchema)
    const r = app.store.applyOnce(mac, key, 'inventory', () => app.store.recordInventory(mac, inventory))
    if (r.replayed) return replay(res, app, mac, 'inventory', deployTask(app.store.get(mac)!, app))
    const m = await preflightMachine(app, r.value)
    sendJson(res, 200, deployTask(m, app))
  }),
  route(['POST'], '/api/v1/machines/:mac/progress', async ({ req, res, app }, mac) => {
    const key = idempotencyKey(req)
    const p = await readJson(req, progressSchema)
    answer(
      res,
      app,
      mac,
      'progress',
      app.store.applyOnce(mac, key, 'progress', () => app.store.recordProgress(mac, p)),
    )
  }),
  route(['POST'], '/api/v1/machines/:mac/events', async ({ req, res, app }, mac) => {
    const key = idempotencyKey(req)
    const e = await readJson(req, eventSchema)
    answer(
      res,
      app,
      mac,
      'events',
      app.store.applyOnce(mac, key, 'events', () => app.store.recordEvent(mac, e.kind, e.fields)),
    )
  }),
  route(['POST'], '/api/v1/machines/:mac/report', async ({ req, res, app }, mac) => {
    const key = idempotencyKey(req)
    const r = await readJson(req, firstBootSchema)
    answer(
      res,
      app,
      mac,
      'report',
      app.store.applyOnce(mac, key, 'report', () => app.store.recordFirstBoot(mac, r)),
    )
  }),
]

/** {state} of the machine after an applied request, or now for a replayed one. */
function answer(res: ServerResponse, app: ServeApp, mac: string, route: string, r: ApplyOnce<MachineRecord>): void {
  if (r.replayed) replay(res, app, mac, route, { state: app.store.get(mac)!.state })
  else sendJson(res, 200, { state: r.value.state })
}

function replay(res: ServerResponse, app: ServeApp, mac: string, route: string, body: unknown): void {
  // In the log: how often an agent's answer was lost (serve restarted, a timeout, the network).
  app.log({ event: 'replayed', mac, route })
  res.setHeader('idempotent-replayed', 'true')
  sendJson(res, 200, body)
}
