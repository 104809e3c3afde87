// A route of serve's HTTP layer: its method and path pattern, its timeout, its handler.
// Handlers parse, check auth and sizes, call the state module, and answer; nothing else.

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ServeConfig } from './config.js'
import type { EventStream } from './event-stream.js'
import type { ServeImages } from './serve-images.js'
import type { MachineStore } from './state/store.js'

/** What every handler gets. */
export interface ServeApp {
  config: ServeConfig
  /** The config's images and the catalog's (serve-images.ts). */
  images: ServeImages
  store: MachineStore
  /** The dashboard's live streams (routes/stream.ts). */
  stream: EventStream
  /** One JSON record to the log (redacted by the logger). */
  log(record: Record<string, unknown>): void
}

/** One request as a handler sees it. */
export interface RouteContext {
  req: IncomingMessage
  res: ServerResponse
  /** The pattern's ":name" segments, percent-decoded and checked (http-util.ts pathSegments). */
  params: Record<string, string>
  query: URLSearchParams
  app: ServeApp
  /** Aborted when the route's timeout fires or the client goes away. */
  signal: AbortSignal
}

/** A route. `timeout` is the whole request's limit ("total") or the longest silence while streaming ("idle"). */
export interface Route {
  methods: readonly string[]
  /** "/api/v1/machines/:mac/seed". */
  pattern: string
  timeout: { kind: 'total' | 'idle'; ms: number }
  handle(ctx: RouteContext): Promise<void>
}

/** API routes answer within this. */
export const API_TIMEOUT = { kind: 'total', ms: 15_000 } as const
/** A file stream may take minutes; it must not stall for longer than this. */
export const STREAM_TIMEOUT = { kind: 'idle', ms: 60_000 } as const

/** The params of `pattern` in `segments`, or undefined when it does not match. */
export function matchPattern(pattern: string, segments: readonly string[]): Record<string, string> | undefined {
  const parts = pattern.split('/').filter(Boolean)
  if (parts.length !== segments.length) return undefined
  const params: Record<string, string> = {}
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!
    if (p.startsWith(':')) params[p.slice(1)] = segments[i]!
    else if (p !== segments[i]) return undefined
  }
  return params
}
