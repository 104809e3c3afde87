// The small pieces of HTTP every serve route uses: a request path split and checked before
// anything looks at it, bodies read under a size limit, JSON answers, errors with a status.

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { z } from 'zod'

/** A request that ends with this status and message (the message is safe to show: no secrets). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly hint?: string,
  ) {
    super(message)
  }
}

/** The largest JSON body the API reads. */
export const MAX_BODY_BYTES = 1024 * 1024

/**
 * The path's segments, each percent-decoded once, from the raw request target. Refused
 * (400): a segment that is "." or ".." before or after decoding, one that decodes to
 * something holding "/", "\" or NUL, bad percent-encoding, empty segments. The WHATWG URL
 * parser would quietly resolve "/images/a/%2e%2e/x" to "/images/x": we look first.
 */
export function pathSegments(rawUrl: string): string[] {
  const pathname = rawUrl.split(/[?#]/, 1)[0]!
  if (!pathname.startsWith('/')) throw new HttpError(400, 'Cannot route the request: the path is not absolute')
  const raw = pathname.slice(1).split('/')
  if (raw.length === 1 && raw[0] === '') return []
  return raw.map((seg) => {
    let decoded: string
    try {
      decoded = decodeURIComponent(seg)
    } catch {
      throw new HttpError(400, 'Cannot route the request: bad percent-encoding in the path')
    }
    if (
      seg === '' ||
      decoded === '' ||
      seg === '.' ||
      seg === '..' ||
      decoded === '.' ||
      decoded === '..' ||
      /[/\\\0]/.test(decoded)
    ) {
      throw new HttpError(
        400,
        'Cannot route the request: the path has an empty, "." or ".." segment, or an encoded "/", "\\" or NUL',
      )
    }
    return decoded
  })
}

/** The query string's parameters. */
export function queryOf(rawUrl: string): URLSearchParams {
  const i = rawUrl.indexOf('?')
  return new URLSearchParams(i < 0 ? '' : rawUrl.slice(i + 1))
}

/** Reads a body of at most `limit` bytes; larger is a 413 (refused from Content-Length before reading when it says so). */
export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN)
  if (Number.isFinite(declared) && declared > limit)
    throw new HttpError(413, `Cannot accept the request: the body is ${declared} bytes, the limit is ${limit}`)
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length
    if (total > limit) throw new HttpError(413, `Cannot accept the request: the body is over the ${limit}-byte limit`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

/** Reads a JSON body and validates it with a zod schema (400 naming the field). */
export async function readJson<T>(req: IncomingMessage, schema: z.ZodType<T>, limit = MAX_BODY_BYTES): Promise<T> {
  const body = await readBody(req, limit)
  let data: unknown
  try {
    data = JSON.parse(body.toString('utf8'))
  } catch {
    throw new HttpError(400, 'Cannot read the request: the body is not JSON')
  }
  const r = schema.safeParse(data)
  if (!r.success) {
    const issue = r.error.issues[0]!
    const field = issue.path
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
      .join('')
      .replace(/^\./, '')
    throw new HttpError(400, `Cannot read the request: field "${field || '(root)'}": ${issue.message}`)
  }
  return r.data
}

/** Answers with a JSON document. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n'
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  })
  res.end(text)
}

/** Answers with text. */
export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  contentType = 'text/plain; charset=utf-8',
): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  })
  res.end(text)
}

/** The bearer token of an Authorization header (RFC 6750 §2.1), or undefined. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const m = /^Bearer[ ]+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(req.headers.authorization ?? '')
  return m?.[1]
}

/**
 * The request's Idempotency-Key (draft-ietf-httpapi-idempotency-key-header: a structured
 * field string, so quoted; a bare token is taken too), or undefined; a bad one is a 400.
 */
export function idempotencyKey(req: IncomingMessage): string | undefined {
  const raw = req.headers['idempotency-key']
  if (raw === undefined) return undefined
  const v = (Array.isArray(raw) ? raw.join(',') : raw).trim()
  const m = /^"([A-Za-z0-9._:-]{1,128})"$|^([A-Za-z0-9._:-]{1,128})$/.exec(v)
  if (!m)
    throw new HttpError(
      400,
      'Cannot read the request: the Idempotency-Key header must be 1 to 128 letters, digits, ".", "_", ":" or "-", quoted',
    )
  return m[1] ?? m[2]
}

/** Whether a socket address is the loopback (127.0.0.0/8, ::1, and IPv4-mapped 127.x). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false
  return address === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(address)
}
