// GET /boot/ipxe?mac=MAC: the iPXE script for a machine (boot-answers.ts). An unknown MAC
// with `unknown_macs: ignore` gets a 404 and nothing else.

import { ipxeScript } from '../boot-answers.js'
import { HttpError, sendText } from '../http-util.js'
import { normalizeMac } from '../mac.js'
import { API_TIMEOUT, type Route } from '../route.js'

export const bootRoutes: Route[] = [
  {
    methods: ['GET'],
    pattern: '/boot/ipxe',
    timeout: API_TIMEOUT,
    async handle({ res, query, app }) {
      const mac = normalizeMac(query.get('mac') ?? '')
      if (!mac)
        throw new HttpError(
          400,
          'Cannot answer the boot request: ?mac= must be a MAC address such as 52:54:00:12:34:56',
        )
      const d = app.store.boot(mac, app.config.unknownMacs, 'ipxe')
      if (d.action === 'ignore') throw new HttpError(404, 'Cannot answer the boot request: unknown MAC')
      const script =
        d.action === 'local'
          ? ipxeScript({ action: 'local', mac })
          : ipxeScript({
              action: 'deploy',
              boot: { publicUrl: app.config.publicUrl, mac, token: d.token, kernelArgs: app.config.kernelArgs },
            })
      sendText(res, 200, script)
    },
  },
]
