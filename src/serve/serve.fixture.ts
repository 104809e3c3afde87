// Helpers for serve's tests: a raw HTTP request (the path sent as written, which fetch and
// URL would normalize), a config written beside a fixture image, and a TCP proxy that cuts
// the first whole-file download after N bytes (the fault the installer must resume from).

import { promises as fsp } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'

/** A response, its body read whole. */
export interface RawResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

/** Sends one request with `rawPath` exactly as given. */
export function rawRequest(
  base: string,
  rawPath: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<RawResponse> {
  const u = new URL(base)
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: rawPath,
        method: opts.method ?? 'GET',
        headers: opts.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    if (opts.body !== undefined) req.end(opts.body)
    else req.end()
  })
}

/** JSON of a response body. */
export function json<T = Record<string, unknown>>(r: RawResponse): T {
  return JSON.parse(r.body.toString('utf8')) as T
}

/** Writes serve.yaml in `dir` with an image "default" at `imageDir`, plus extra YAML. */
export async function writeConfig(dir: string, imageDir: string, extra = ''): Promise<string> {
  const file = path.join(dir, 'serve.yaml')
  await fsp.writeFile(
    file,
    `listen: { host: 127.0.0.1, port: 0 }\npublic_url: http://10.0.2.2:8080\nstate_dir: ${path.join(dir, 'state')}\nimages:\n  default: ${imageDir}\n${extra}`,
  )
  return file
}

/** A proxy in front of `target` that cuts the first GET without Range of a path ending in `suffix` after `after` bytes. */
export async function cuttingProxy(
  target: string,
  suffix: string,
  after: number,
): Promise<{ url: string; cuts: number; close(): Promise<void> }> {
  const t = new URL(target)
  const state = { cuts: 0 }
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(t.port), t.hostname)
    sockets.add(client).add(upstream)
    let armed = false
    let sent = 0
    // After the cut nothing more reaches the client: the upstream may deliver more chunks
    // before the cut's write completes, and passing them on would leave a gap in the body.
    let cut = false
    client.on('data', (d: Buffer) => {
      const text = d.toString('latin1')
      const line = /^GET (\S+) HTTP/.exec(text)
      if (line && state.cuts === 0 && line[1]!.split('?')[0]!.endsWith(suffix) && !/\r\nrange:/i.test(text)) {
        armed = true
        sent = 0
      }
      upstream.write(d)
    })
    upstream.on('data', (d: Buffer) => {
      if (cut) return
      if (armed && sent + d.length >= after) {
        state.cuts++
        armed = false
        cut = true
        client.write(d.subarray(0, Math.max(0, after - sent)), () => {
          client.destroy()
          upstream.destroy()
        })
        return
      }
      sent += d.length
      client.write(d)
    })
    const end = () => (client.destroy(), upstream.destroy())
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    get cuts() {
      return state.cuts
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  }
}
