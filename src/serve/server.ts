// `hwimage serve`'s HTTP server: node:http, a route table (routes/*.ts), and around every
// request the rules of STYLE.md "Servers and the deploy path": the path checked before
// routing (http-util.ts pathSegments), a timeout per route, bodies under a limit (in the
// handlers, readBody), one redacted log record per request. State lives in the store; the
// TFTP tree follows each change of a machine. No framework: the routes are a dozen, and
// node:http gives the timeouts and streaming they need.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { HwimageError, InputError } from '../errors.js'
import type { ConfiguredMachine, ServeConfig } from './config.js'
import { HttpError, pathSegments, queryOf, sendJson, sendText } from './http-util.js'
import { redact, redactRecord } from './redact.js'
import { matchPattern, type Route, type ServeApp } from './route.js'
import { EventStream, type EventStreamOptions } from './event-stream.js'
import { bootRoutes } from './routes/boot.js'
import { dashboardRoutes } from './routes/dashboard.js'
import { enlistRoutes } from './routes/enlist.js'
import { fileRoutes } from './routes/files.js'
import { machineRoutes } from './routes/machine.js'
import { operatorRoutes } from './routes/operator.js'
import { streamRoutes } from './routes/stream.js'
import { ServeImages } from './serve-images.js'
import { MachineStore, StateConflictError } from './state/store.js'
import { syncMachineGrubConfig, syncTftpTree, type TftpTreeOptions } from './tftp-tree.js'

/** Every route, in matching order. */
export const ROUTES: readonly Route[] = [
  ...bootRoutes,
  ...fileRoutes,
  ...enlistRoutes,
  ...machineRoutes,
  ...operatorRoutes,
  ...streamRoutes,
  ...dashboardRoutes,
]

/** Options of startServe beyond the config. */
export interface ServeOptions {
  /** Receives one record per request and per notable event (already redacted). */
  log?: (record: Record<string, unknown>) => void
  /** Override the shim and GRUB files of the TFTP tree (tests). */
  tftp?: Pick<TftpTreeOptions, 'shim' | 'grub'>
  /** Listen on this port instead of the config's (tests: 0). */
  port?: number
  host?: string
  /** Shorter limits than the defaults (tests): a request's headers, the whole request, an API route's answer, a file stream's longest stall. */
  timeouts?: { headersMs?: number; requestMs?: number; apiMs?: number; streamIdleMs?: number }
  /** The dashboard's live stream (tests: a short heartbeat, small pages). */
  stream?: EventStreamOptions
}

/** A running serve. */
export interface RunningServe {
  url: string
  host: string
  port: number
  store: MachineStore
  /** The open dashboard streams. */
  stream: EventStream
  server: Server
  /** Resolves when the TFTP tree has caught up with every change so far. */
  tftpSettled(): Promise<void>
  close(): Promise<void>
}

/** A configured machine's image as a name serve offers: a catalog alias resolved to PRODUCT@SERIAL. */
function pinImage(config: ServeConfig, images: ServeImages, m: ConfiguredMachine): ConfiguredMachine {
  if (m.image === undefined || config.images.has(m.image)) return m
  const image = images.resolve(m.image)
  if (!image)
    throw new InputError(
      'CONFIG_INVALID',
      `Invalid config "${config.source}": machine ${m.mac}: no image "${m.image}" in "images" or the catalog (known: ${images.names().join(', ') || 'none'})`,
      { hint: 'name an image of "images", or a catalog product, alias or latest, with or without @SERIAL' },
    )
  return { ...m, image: image.name }
}

/** Opens the state, syncs the config's machines and the TFTP tree, and listens. */
export async function startServe(config: ServeConfig, opts: ServeOptions = {}): Promise<RunningServe> {
  const log = (r: Record<string, unknown>) => opts.log?.(redactRecord({ time: new Date().toISOString(), ...r }))
  const images = new ServeImages(config.images, config.catalog, log)
  await images.refresh()
  const machines = [...config.machines.values()].map((m) => pinImage(config, images, m))
  const store = MachineStore.open(config.stateDir)
  try {
    store.syncConfigured(machines)
    let tftpChain = Promise.resolve()
    if (config.tftpRoot) {
      const tftp: TftpTreeOptions = {
        root: config.tftpRoot,
        publicUrl: config.publicUrl,
        kernelArgs: config.kernelArgs,
        deployDir: config.deployDir,
        enlist: config.unknownMacs === 'enlist',
        ...opts.tftp,
      }
      await syncTftpTree(store, tftp)
      store.onChange((mac) => {
        tftpChain = tftpChain
          .then(() => syncMachineGrubConfig(store, tftp, mac))
          .then(
            (r) => {
              if (r !== 'kept') log({ event: 'tftp', mac, config: r })
            },
            (e: unknown) => log({ event: 'tftp-error', mac, message: (e as Error).message }),
          )
      })
    }
    const stream = new EventStream(store, opts.stream)
    const app: ServeApp = { config, images, store, stream, log }
    const server = createServer(
      // node:http enforces headersTimeout and requestTimeout only when it checks its
      // connections, every 30 s by default: a slowloris client would hold its socket for
      // 40 s instead of 10. Checking every second costs one walk over the open connections.
      { connectionsCheckingInterval: Math.min(1000, opts.timeouts?.headersMs ?? 1000) },
      (req, res) => void handle(app, req, res, opts.timeouts),
    )
    // Receiving a request (headers and body) is bounded; responses are bounded per route.
    server.headersTimeout = opts.timeouts?.headersMs ?? 10_000
    server.requestTimeout = opts.timeouts?.requestMs ?? 60_000
    server.keepAliveTimeout = 5_000
    const host = opts.host ?? config.listen.host
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new HwimageError(
            'NETWORK',
            `Cannot listen on ${host}:${opts.port ?? config.listen.port}: ${e.code ?? e.message}`,
            { cause: e, hint: 'choose another listen.port, or stop what uses it' },
          ),
        ),
      )
      server.listen(opts.port ?? config.listen.port, host, () => resolve())
    })
    const port = (server.address() as AddressInfo).port
    const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host
    return {
      url: `http://${urlHost}:${port}`,
      host,
      port,
      store,
      stream,
      server,
      tftpSettled: () => tftpChain,
      close: async () => {
        // The streams end first, as a finished response: EventSource sees the end and reconnects later.
        stream.close()
        await new Promise<void>((r) => {
          server.close(() => r())
          server.closeAllConnections()
        })
        await tftpChain
        store.close()
      },
    }
  } catch (e) {
    store.close()
    throw e
  }
}

async function handle(
  app: ServeApp,
  req: IncomingMessage,
  res: ServerResponse,
  timeouts: ServeOptions['timeouts'] = {},
): Promise<void> {
  const started = Date.now()
  let bytes = 0
  const write = res.write.bind(res) as (...a: unknown[]) => boolean
  const end = res.end.bind(res) as (...a: unknown[]) => ServerResponse
  res.write = ((chunk: unknown, ...rest: unknown[]) => (
    (bytes += chunkLength(chunk)), write(chunk, ...rest)
  )) as typeof res.write
  // An answer goes out once the changes made for it are on disk (MachineStore batches the
  // commits of one turn of the event loop): until then its headers and body wait here. When
  // the batch could not be committed the connection is dropped unanswered: the agent retries
  // (its Idempotency-Key was rolled back with the change), the operator sees an error.
  res.end = ((chunk?: unknown, ...rest: unknown[]) => {
    bytes += typeof chunk === 'function' ? 0 : chunkLength(chunk)
    app.store.afterCommit((ok) => {
      if (ok) end(chunk, ...rest)
      else {
        app.log({ event: 'commit-failed', message: app.store.commitError?.message ?? 'unknown' })
        res.destroy()
      }
    })
    return res
  }) as typeof res.end
  const rawUrl = req.url ?? '/'
  // Read now: once a long response (a download, the dashboard's stream) closes, the socket has no address.
  const remote = req.socket.remoteAddress
  res.once('close', () => {
    app.log({
      event: 'request',
      method: req.method,
      path: redact(rawUrl),
      status: res.statusCode,
      bytes,
      ms: Date.now() - started,
      remote,
      ...(res.writableFinished ? {} : { aborted: true }),
    })
  })

  const ctrl = new AbortController()
  // The response closing before it finished: the client went away (req's own 'close' only means its body was read).
  res.once('close', () => {
    if (!res.writableFinished) ctrl.abort()
  })
  let timer: NodeJS.Timeout | undefined
  let isApi = true
  try {
    const segments = pathSegments(rawUrl)
    let found: { route: Route; params: Record<string, string> } | undefined
    let pathMatched = false
    for (const route of ROUTES) {
      const params = matchPattern(route.pattern, segments)
      if (!params) continue
      pathMatched = true
      if (route.methods.includes(req.method ?? '')) {
        found = { route, params }
        break
      }
    }
    if (!found)
      throw pathMatched
        ? new HttpError(405, `Cannot answer: ${req.method} is not allowed here`)
        : new HttpError(404, 'Cannot answer: no such route')
    const { route, params } = found
    isApi = route.pattern.startsWith('/api/')
    if (route.timeout.kind === 'total') {
      const ms = timeouts.apiMs ?? route.timeout.ms
      timer = setTimeout(() => {
        ctrl.abort()
        if (!res.headersSent) {
          res.setHeader('connection', 'close')
          fail(res, new HttpError(503, `Cannot answer: the request took longer than ${ms / 1000} s`), isApi)
        }
        // Let the answer go out, then drop the connection and whatever the client still sends.
        res.once('finish', () => req.socket.destroy())
      }, ms)
    } else {
      // A reader that stops reading stalls the stream (pipeline() waits for the socket to
      // drain, so serve holds at most a chunk or two for it): after this long it is dropped.
      res.setTimeout(timeouts.streamIdleMs ?? route.timeout.ms, () => {
        ctrl.abort()
        res.destroy()
      })
    }
    await route.handle({ req, res, params, query: queryOf(rawUrl), app, signal: ctrl.signal })
  } catch (e) {
    if (res.headersSent) {
      res.destroy()
    } else {
      const err = toHttpError(e)
      if (err.status >= 500) app.log({ event: 'error', path: redact(rawUrl), message: (e as Error).message })
      fail(res, err, isApi || rawUrl.startsWith('/api/'))
    }
  } finally {
    clearTimeout(timer)
  }
}

function chunkLength(chunk: unknown): number {
  if (typeof chunk === 'string') return Buffer.byteLength(chunk)
  if (chunk instanceof Uint8Array) return chunk.length
  return 0
}

function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e
  if (e instanceof StateConflictError) return new HttpError(409, e.message, e.hint)
  if (e instanceof HwimageError && e.code === 'NOT_FOUND') return new HttpError(404, e.message, e.hint)
  if (e instanceof InputError) return new HttpError(400, e.message, e.hint)
  return new HttpError(500, 'Cannot answer: internal error (see the serve log)')
}

function fail(res: ServerResponse, err: HttpError, json: boolean): void {
  // A refused body (413) is not read to its end: close the connection after the answer.
  if (err.status === 413) res.setHeader('connection', 'close')
  if (json)
    sendJson(res, err.status, {
      error: { status: err.status, message: err.message, ...(err.hint ? { hint: err.hint } : {}) },
    })
  else sendText(res, err.status, err.message + '\n')
}
