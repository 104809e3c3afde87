// POST /api/v1/enlist {"mac": MAC}: the one route without a token. A machine serve does
// not know that booted the deploy environment from the fallback GRUB config (UEFI: serve
// saw no HTTP request, so had no token to put on its command line) asks for one here.
// Only with `unknown_macs: enlist`; a MAC serve knows is refused (409): it boots with its
// own config and token. An enlisted machine gets no image and no seed until an operator
// assigns them, so the token opens nothing secret by itself.

import { z } from 'zod'
import { HttpError, readJson, sendJson } from '../http-util.js'
import { normalizeMac } from '../mac.js'
import { API_TIMEOUT, type Route } from '../route.js'

const enlistSchema = z.object({ mac: z.string().max(32) }).strict()

export const enlistRoutes: Route[] = [
  {
    methods: ['POST'],
    pattern: '/api/v1/enlist',
    timeout: API_TIMEOUT,
    async handle({ req, res, app }) {
      if (app.config.unknownMacs !== 'enlist')
        throw new HttpError(404, 'Cannot enlist: this serve does not enlist unknown machines')
      const body = await readJson(req, enlistSchema, 4096)
      const mac = normalizeMac(body.mac)
      if (!mac) throw new HttpError(400, 'Cannot enlist: field "mac": expected a MAC address such as 52:54:00:12:34:56')
      const token = app.store.enlist(mac)
      if (token === undefined)
        throw new HttpError(409, `Cannot enlist ${mac}: the machine is known; it boots with its own config and token`)
      sendJson(res, 200, { mac, token })
    },
  },
]
