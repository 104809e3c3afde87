// The sendfile(2) addon (native/send-file.c, built with the zstd one by `make setup` /
// `npm ci`). Optional: serve sends file bodies through two buffers (src/serve/send-range.ts)
// when it is missing, when running as the single executable (the deploy environment does
// not serve files), or when HWIMAGE_SERVE_SENDFILE=0 (the benchmark's paired comparison).

import { createRequire } from 'node:module'
import path from 'node:path'
import { isSea } from 'node:sea'
import { fileURLToPath } from 'node:url'

/** What the addon exports. */
export interface SendFileNative {
  /**
   * One non-blocking sendfile(2) of up to `count` bytes of `fileFd` from `offset` to the
   * socket `socketFd`: the bytes sent, 0 at the file's end, -1 when the socket's buffer is
   * full. Throws an Error whose code is the errno's name (EPIPE, ECONNRESET …).
   */
  sendFileNonBlocking(socketFd: number, fileFd: number, offset: number, count: number): number
  /**
   * Calls `callback` once, when the socket can take more bytes (0) or has failed (a negative
   * libuv error code): polls a dup of the fd, as Node's libuv watches the fd itself.
   */
  waitWritable(socketFd: number, callback: (status: number) => void): Waiter
  /** Stops a wait that has not called back (its callback is then never called); closes its dup'd fd. */
  cancelWait(waiter: Waiter): void
}

/** A wait started by waitWritable. */
export type Waiter = { readonly __waiter: unique symbol }

// src/serve/ and dist/serve/ are both two levels below the package root, where node-gyp builds.
const ADDON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../build/Release/send_file.node')

let loaded: SendFileNative | null | undefined

/** The addon, or undefined when it is not built or is switched off. */
export function sendFileNative(): SendFileNative | undefined {
  if (loaded === undefined) {
    loaded = null
    if (process.env.HWIMAGE_SERVE_SENDFILE !== '0' && !isSea()) {
      try {
        const addon = createRequire(import.meta.url)(ADDON) as Partial<SendFileNative>
        // A build from before waitWritable existed: the copy path until setup rebuilds it.
        if (typeof addon.waitWritable === 'function') loaded = addon as SendFileNative
      } catch {
        // Not built: the copy path serves the same bytes.
      }
    }
  }
  return loaded ?? undefined
}
