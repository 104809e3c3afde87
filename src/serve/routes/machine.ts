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

import type { IncomingMessage } from 'node:http'
import { eventSchema, firstBootSchema, inventorySchema, progressSchema } from '../api-schemas.js'
import { deployTask, seedForMachine } from '../deploy-task.js'
import { bearerToken, HttpError, readJson, sendJson, sendText } from '../http-util.js'
import { normalizeMac } from '../mac.js'
import { preflightMachine } from '../preflight-check.js'
import { API_TIMEOUT, type Route, type RouteContext, type ServeApp } from '../route.js'

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
    sendJson(res, 200, deployTask(app.store.get(mac)!, app.config))
  }),
  route(['GET'], '/api/v1/machines/:mac/seed', async ({ res, app }, mac, token) => {
    const seed = app.store.seedOf(mac)
    if (seed === undefined) throw new HttpError(404, 'Cannot serve the seed: none is assigned to this machine')
    sendText(res, 200, seedForMachine(seed, mac, app.config.publicUrl, token), 'application/yaml; charset=utf-8')
  }),
  route(['POST'], '/api/v1/machines/:mac/inventory', async ({ req, res, app }, mac) => {
    const inventory = await readJson(req, inventorySchema)
    const m = await preflightMachine(app, app.store.recordInventory(mac, inventory))
    sendJson(res, 200, deployTask(m, app.config))
  }),
  route(['POST'], '/api/v1/machines/:mac/progress', async ({ req, res, app }, mac) => {
    const p = await readJson(req, progressSchema)
    const m = app.store.recordProgress(mac, p)
    sendJson(res, 200, { state: m.state })
  }),
  route(['POST'], '/api/v1/machines/:mac/events', async ({ req, res, app }, mac) => {
    const e = await readJson(req, eventSchema)
    const m = app.store.recordEvent(mac, e.kind, e.fields)
    sendJson(res, 200, { state: m.state })
  }),
  route(['POST'], '/api/v1/machines/:mac/report', async ({ req, res, app }, mac) => {
    const r = await readJson(req, firstBootSchema)
    const m = app.store.recordFirstBoot(mac, r)
    sendJson(res, 200, { state: m.state })
  }),
]
