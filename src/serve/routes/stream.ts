// GET /api/v1/stream: the dashboard's live updates as Server-Sent Events (event-stream.ts),
// with the operator API's auth. EventSource cannot set an Authorization header, so this
// route alone also takes the operator token as the `access_token` query parameter (RFC 6750
// §2.3); the request log redacts it (redact.ts), and the stream is read-only.

import { STREAM_TIMEOUT, type Route } from '../route.js'
import { authorizeOperator } from './operator.js'

export const streamRoutes: Route[] = [
  {
    methods: ['GET'],
    pattern: '/api/v1/stream',
    // Idle, not total: the stream lasts as long as the page is open; heartbeats keep it from idling.
    timeout: STREAM_TIMEOUT,
    async handle(ctx) {
      authorizeOperator(ctx, { queryToken: true })
      const last = ctx.req.headers['last-event-id']
      const lastEventId = typeof last === 'string' && /^\d{1,15}$/.test(last) ? Number(last) : undefined
      await ctx.app.stream.attach(ctx.res, lastEventId === undefined ? {} : { lastEventId })
    },
  },
]
