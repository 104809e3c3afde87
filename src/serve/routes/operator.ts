// The operator's API (the CLI's `hwimage machines` and a dashboard are its clients). With
// `operator_token` in the config every request needs `Authorization: Bearer <that token>`
// (401 without, 403 wrong); without it, only requests from the loopback address are
// answered (403 otherwise). Listings carry no tokens and no seed text.
//
//   GET    /api/v1/machines             every machine
//   GET    /api/v1/machines/MAC         one machine, the phases of its deploy (deploy-phases.ts) and its events
//   POST   /api/v1/machines/MAC/assign  {image, seed_yaml?, disk_hints?, name?}
//   POST   /api/v1/machines/MAC/redeploy
//   DELETE /api/v1/machines/MAC
//   GET    /api/v1/images               the images and their URLs

import { createHash, timingSafeEqual } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { HwimageError } from '../../errors.js'
import { parseDiskHints } from '../../install/disk-hints.js'
import { parseSeed } from '../../seed/seed-schema.js'
import { assignSchema } from '../api-schemas.js'
import { bearerToken, HttpError, isLoopback, readJson, sendJson } from '../http-util.js'
import { normalizeMac } from '../mac.js'
import { deployPhases } from '../deploy-phases.js'
import { preflightMachine } from '../preflight-check.js'
import { API_TIMEOUT, type Route, type RouteContext } from '../route.js'

/** Refuses a request that is not the operator's (see the header). */
export function authorizeOperator({ req, app }: Pick<RouteContext, 'req' | 'app'>): void {
  const want = app.config.operatorToken
  if (want === undefined) {
    if (!isLoopback(req.socket.remoteAddress))
      throw new HttpError(
        403,
        'Cannot answer: the operator API answers the loopback address only (no operator_token in the config)',
      )
    return
  }
  const got = bearerToken(req)
  if (got === undefined)
    throw new HttpError(401, 'Cannot answer: the operator API needs the operator token (Authorization: Bearer …)')
  const digest = (s: string) => createHash('sha256').update(s).digest()
  if (!timingSafeEqual(digest(got), digest(want))) throw new HttpError(403, 'Cannot answer: wrong operator token')
}

function macParam(raw: string): string {
  const mac = normalizeMac(raw)
  if (!mac) throw new HttpError(400, 'Cannot use the path: the machine must be a MAC address such as 52:54:00:12:34:56')
  return mac
}

const route = (methods: string[], pattern: string, handle: (ctx: RouteContext) => Promise<void>): Route => ({
  methods,
  pattern,
  timeout: API_TIMEOUT,
  async handle(ctx) {
    authorizeOperator(ctx)
    await handle(ctx)
  },
})

export const operatorRoutes: Route[] = [
  route(['GET'], '/api/v1/machines', async ({ res, app }) => {
    sendJson(res, 200, { machines: app.store.list() })
  }),
  route(['GET'], '/api/v1/machines/:mac', async ({ res, app, params }) => {
    const mac = macParam(params.mac!)
    const m = app.store.get(mac)
    if (!m) throw new HttpError(404, `Cannot show machine ${mac}: no such machine`)
    const events = app.store.events(mac)
    sendJson(res, 200, { machine: m, phases: deployPhases(m, events), events })
  }),
  route(['POST'], '/api/v1/machines/:mac/assign', async ({ req, res, app, params }) => {
    const mac = macParam(params.mac!)
    const body = await readJson(req, assignSchema)
    if (!app.config.images.has(body.image))
      throw new HttpError(
        400,
        `Cannot assign: no image "${body.image}" (known: ${[...app.config.images.keys()].join(', ') || 'none'})`,
      )
    try {
      if (body.seed_yaml !== undefined) parseSeed(body.seed_yaml, 'seed_yaml')
      if (body.disk_hints?.length) parseDiskHints(body.disk_hints)
    } catch (e) {
      throw new HttpError(400, `Cannot assign: ${(e as Error).message}`, e instanceof HwimageError ? e.hint : undefined)
    }
    // A machine whose inventory is known is checked against the image now (preflight-check.ts).
    const m = await preflightMachine(
      app,
      app.store.assign(mac, {
        image: body.image,
        seedYaml: body.seed_yaml,
        diskHints: body.disk_hints,
        name: body.name,
      }),
    )
    sendJson(res, 200, { machine: m })
  }),
  route(['POST'], '/api/v1/machines/:mac/redeploy', async ({ res, app, params }) => {
    const mac = macParam(params.mac!)
    if (!app.store.get(mac)) throw new HttpError(404, `Cannot redeploy machine ${mac}: no such machine`)
    sendJson(res, 200, { machine: app.store.redeploy(mac) })
  }),
  route(['DELETE'], '/api/v1/machines/:mac', async ({ res, app, params }) => {
    const mac = macParam(params.mac!)
    if (!app.store.remove(mac)) throw new HttpError(404, `Cannot delete machine ${mac}: no such machine`)
    sendJson(res, 200, { deleted: mac })
  }),
  route(['GET'], '/api/v1/images', async ({ res, app }) => {
    const images = []
    for (const image of app.config.images.values()) {
      const files = []
      for (const name of (await fsp.readdir(image.dir).catch(() => [] as string[])).sort()) {
        const st = await fsp.stat(path.join(image.dir, name)).catch(() => undefined)
        if (st?.isFile())
          files.push({
            name,
            sizeBytes: st.size,
            url: `${app.config.publicUrl}/images/${encodeURIComponent(image.name)}/${encodeURIComponent(name)}`,
          })
      }
      images.push({
        name: image.name,
        file: image.file,
        url: `${app.config.publicUrl}/images/${encodeURIComponent(image.name)}/${encodeURIComponent(image.file)}`,
        files,
      })
    }
    sendJson(res, 200, { images })
  }),
]
