// The dashboard's files (docs/dashboard.md): GET / is dashboard/index.html, GET /ui/FILE
// one of the files beside it — plain HTML, CSS and JavaScript modules from the package,
// no build step. No token: the files hold no data; the page reads everything from the
// operator API, with the operator's token. A Content-Security-Policy keeps the page to
// its own origin's scripts, styles and connections.

import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { sendFile } from '../file-response.js'
import { HttpError } from '../http-util.js'
import { API_TIMEOUT, type Route } from '../route.js'

/** dashboard/ at the package's root: src/serve/routes/ and dist/serve/routes/ both sit three levels below it. */
export function dashboardDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../dashboard')
}

/** The file types the dashboard is made of; any other name is 404. */
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
}

/** The headers of every dashboard file. */
export const DASHBOARD_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
} as const

async function send(ctx: Parameters<Route['handle']>[0], name: string): Promise<void> {
  const type = TYPES[path.extname(name)]
  if (!type) throw new HttpError(404, 'Cannot serve the file: not a dashboard file')
  await sendFile(ctx.req, ctx.res, dashboardDir(), name, ctx.signal, { ...DASHBOARD_HEADERS, 'content-type': type })
}

export const dashboardRoutes: Route[] = [
  {
    methods: ['GET', 'HEAD'],
    pattern: '/',
    timeout: API_TIMEOUT,
    handle: (ctx) => send(ctx, 'index.html'),
  },
  {
    methods: ['GET', 'HEAD'],
    pattern: '/ui/:file',
    timeout: API_TIMEOUT,
    handle: (ctx) => send(ctx, ctx.params.file!),
  },
]
