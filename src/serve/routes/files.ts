// GET|HEAD /images/NAME/FILE (an image's build outputs) and /deploy/FILE (the deploy
// environment's kernel and initrd), with Range (file-response.ts). No token: images and
// the deploy environment hold no secrets; seeds do, and have their own route.

import { sendFile } from '../file-response.js'
import { HttpError } from '../http-util.js'
import { STREAM_TIMEOUT, type Route } from '../route.js'

export const fileRoutes: Route[] = [
  {
    methods: ['GET', 'HEAD'],
    pattern: '/images/:name/:file',
    timeout: STREAM_TIMEOUT,
    async handle({ req, res, params, app, signal }) {
      const image = app.images.get(params.name!)
      if (!image) throw new HttpError(404, 'Cannot serve the file: no such image')
      await sendFile(req, res, image.dir, params.file!, signal)
    },
  },
  {
    methods: ['GET', 'HEAD'],
    pattern: '/deploy/:file',
    timeout: STREAM_TIMEOUT,
    async handle({ req, res, params, app, signal }) {
      if (!app.config.deployDir) throw new HttpError(404, 'Cannot serve the file: no deploy_dir in the config')
      await sendFile(req, res, app.config.deployDir, params.file!, signal)
    },
  },
]
