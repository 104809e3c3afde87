// The operator's API (the CLI's `hwimage machines` and a dashboard are its clients). With
// `operator_token` in the config every request needs `Authorization: Bearer <that token>`
// (401 without, 403 wrong); without it, only requests from the loopback address are
// answered (403 otherwise). Listings carry no tokens and no seed text.
//
//   GET    /api/v1/machines             every machine (?phases=1: and the phases of each one's deploy)
//   GET    /api/v1/machines/MAC         one machine, the disk its hints choose, the phases of its deploy (deploy-phases.ts) and its events
//   POST   /api/v1/machines/MAC/assign  {image, seed_yaml?, disk_hints?, name?}
//   POST   /api/v1/machines/MAC/redeploy
//   DELETE /api/v1/machines/MAC
//   GET    /api/v1/images               the images, their URLs and what their manifest.json says (image-info.ts)
//   GET    /api/v1/images/NAME          one image, with its packages
//   GET    /api/v1/images/NAME/lab      its hardware-lab grid (lab-report.ts), or null

import { createHash, timingSafeEqual } from 'node:crypto'
import { chooseDisk } from '../../deploy/choose-disk.js'
import { HwimageError } from '../../errors.js'
import { parseDiskHints } from '../../install/disk-hints.js'
import { parseSeed } from '../../seed/seed-schema.js'
import { assignSchema } from '../api-schemas.js'
import { bearerToken, HttpError, isLoopback, readJson, sendJson } from '../http-util.js'
import { normalizeMac } from '../mac.js'
import { type DeployPhases, deployPhases } from '../deploy-phases.js'
import { imageInfo } from '../image-info.js'
import { readLabGrid } from '../lab-report.js'
import type { MachineRecord } from '../state/store.js'
import { preflightMachine } from '../preflight-check.js'
import type { OfferedImage } from '../serve-images.js'
import { API_TIMEOUT, type Route, type RouteContext } from '../route.js'

/**
 * Refuses a request that is not the operator's (see the header). `queryToken`: the token may
 * also come as `?access_token=` (RFC 6750 §2.3), for EventSource, which cannot set headers.
 */
export function authorizeOperator(
  { req, app, query }: Pick<RouteContext, 'req' | 'app' | 'query'>,
  opts: { queryToken?: boolean } = {},
): void {
  const want = app.config.operatorToken
  if (want === undefined) {
    if (!isLoopback(req.socket.remoteAddress))
      throw new HttpError(
        403,
        'Cannot answer: the operator API answers the loopback address only (no operator_token in the config)',
      )
    return
  }
  const got = bearerToken(req) ?? (opts.queryToken ? (query.get('access_token') ?? undefined) : undefined)
  if (got === undefined)
    throw new HttpError(401, 'Cannot answer: the operator API needs the operator token (Authorization: Bearer …)')
  const digest = (s: string) => createHash('sha256').update(s).digest()
  if (!timingSafeEqual(digest(got), digest(want))) throw new HttpError(403, 'Cannot answer: wrong operator token')
}

/** The disk the machine's hints choose in its inventory, as the deploy agent and the pre-flight check choose it. */
function chosenDisk(m: MachineRecord): { path: string } | { error: { code: string; message: string } } | null {
  if (!m.inventory) return null
  try {
    return { path: chooseDisk(m.inventory, m.diskHints).path }
  } catch (e) {
    const err = e as HwimageError
    return { error: { code: err.code ?? 'INTERNAL', message: err.hint ? `${err.message} (${err.hint})` : err.message } }
  }
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
  route(['GET'], '/api/v1/machines', async ({ res, app, query }) => {
    const machines = app.store.list()
    if (query.get('phases') !== '1') return sendJson(res, 200, { machines })
    const phases: Record<string, DeployPhases> = {}
    for (const m of machines) phases[m.mac] = deployPhases(m, app.store.events(m.mac))
    sendJson(res, 200, { machines, phases })
  }),
  route(['GET'], '/api/v1/machines/:mac', async ({ res, app, params }) => {
    const mac = macParam(params.mac!)
    const m = app.store.get(mac)
    if (!m) throw new HttpError(404, `Cannot show machine ${mac}: no such machine`)
    const events = app.store.events(mac)
    sendJson(res, 200, { machine: m, disk: chosenDisk(m), phases: deployPhases(m, events), events })
  }),
  route(['POST'], '/api/v1/machines/:mac/assign', async ({ req, res, app, params }) => {
    const mac = macParam(params.mac!)
    const body = await readJson(req, assignSchema)
    await app.images.refresh()
    let image: OfferedImage | undefined
    try {
      image = app.images.resolve(body.image)
    } catch (e) {
      throw new HttpError(400, `Cannot assign: ${(e as Error).message}`, e instanceof HwimageError ? e.hint : undefined)
    }
    if (!image)
      throw new HttpError(
        400,
        `Cannot assign: no image "${body.image}" (known: ${app.images.names().join(', ') || 'none'})`,
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
        image: image.name,
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
    await app.images.refresh()
    const images = []
    for (const image of app.images.list()) images.push(await imageInfo(image, app.config.publicUrl))
    sendJson(res, 200, { images, catalog: app.images.catalogSummary() })
  }),
  route(['GET'], '/api/v1/images/:name', async ({ res, app, params }) => {
    const image = app.images.get(params.name!)
    if (!image)
      throw new HttpError(404, `Cannot show image "${params.name}": no such image in the config or the catalog`)
    sendJson(res, 200, { image: await imageInfo(image, app.config.publicUrl, { packages: true }) })
  }),
  route(['GET'], '/api/v1/images/:name/lab', async ({ res, app, params }) => {
    const image = app.images.get(params.name!)
    if (!image)
      throw new HttpError(
        404,
        `Cannot show the lab results of "${params.name}": no such image in the config or the catalog`,
      )
    sendJson(res, 200, await readLabGrid(image.dir))
  }),
]
