// The receiving end of the report-back: an HTTP server that takes POSTed reports
// (JSON from hwimage's first-boot script, or form data such as cloud-init's
// phone_home sends) and hands them out as an async iterable.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { HwimageError } from '../errors.js'

/** A report as received. */
export interface ReceivedReport {
  /** ISO 8601 time of receipt. */
  received: string
  /** The sender's address and port. */
  remote: string
  method: string
  /** Request path and query (phone_home URLs often carry the instance-id). */
  path: string
  contentType: string
  /** The parsed body: a JSON value, form fields as an object, or the text. */
  report: unknown
}

/** A running listener. */
export interface ReportListener {
  /** The port actually bound (useful with port 0). */
  port: number
  host: string
  /** Reports in arrival order; ends after close(). */
  reports: AsyncIterable<ReceivedReport>
  close(): Promise<void>
}

/** The largest report body accepted. */
export const MAX_REPORT_BYTES = 1024 * 1024

/** Starts an HTTP server on host:port that accepts POSTed reports. */
export async function listenForReports(opts: { port: number; host?: string }): Promise<ReportListener> {
  const host = opts.host ?? '0.0.0.0'
  const queue: ReceivedReport[] = []
  const waiters: ((r: IteratorResult<ReceivedReport>) => void)[] = []
  let closed = false

  const deliver = (r: ReceivedReport) => {
    const w = waiters.shift()
    if (w) w({ value: r, done: false })
    else queue.push(r)
  }

  const server = createServer((req, res) => {
    handle(req, res).then(
      (r) => r && deliver(r),
      () => {
        if (!res.headersSent) reply(res, 500, { ok: false, error: 'internal error' })
      },
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new HwimageError('NETWORK', `Cannot listen on ${host}:${opts.port}: ${e.code ?? e.message}`, { cause: e }),
      ),
    )
    server.listen(opts.port, host, () => resolve())
  })
  const port = (server.address() as AddressInfo).port

  const reports: AsyncIterable<ReceivedReport> = {
    [Symbol.asyncIterator]: () => ({
      next: () => {
        const r = queue.shift()
        if (r) return Promise.resolve({ value: r, done: false })
        if (closed) return Promise.resolve({ value: undefined, done: true })
        return new Promise((resolve) => waiters.push(resolve))
      },
      return: () => Promise.resolve({ value: undefined, done: true }),
    }),
  }

  const close = async () => {
    if (closed) return
    closed = true
    for (const w of waiters.splice(0)) w({ value: undefined, done: true })
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return { port, host, reports, close }
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<ReceivedReport | undefined> {
  if (req.method !== 'POST' && req.method !== 'PUT') {
    reply(res, 405, { ok: false, error: 'POST a report here' }, { Allow: 'POST, PUT' })
    return undefined
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_REPORT_BYTES) {
      reply(res, 413, { ok: false, error: `report larger than ${MAX_REPORT_BYTES} bytes` })
      req.destroy()
      return undefined
    }
    chunks.push(chunk)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  let report: unknown
  try {
    report = parseBody(text, contentType)
  } catch {
    reply(res, 400, { ok: false, error: 'body is not valid JSON' })
    return undefined
  }
  reply(res, 200, { ok: true })
  return {
    received: new Date().toISOString(),
    remote: `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`,
    method: req.method,
    path: req.url ?? '/',
    contentType,
    report,
  }
}

/** Parses a report body by its content type: JSON, form data, or text (JSON is tried for text too). */
export function parseBody(text: string, contentType: string): unknown {
  if (contentType === 'application/json' || contentType.endsWith('+json')) return JSON.parse(text)
  if (contentType === 'application/x-www-form-urlencoded') return Object.fromEntries(new URLSearchParams(text))
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers })
  res.end(JSON.stringify(body) + '\n')
}
