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
   * Sends bytes [start, end) of `fileFd` to the socket `socketFd` on the event loop: on
   * each wake-up for writability, sendfile(2) calls until the socket is full, with the
   * socket corked meanwhile; works on a dup of the fd. `onEvent` hears of progress every
   * few MiB and, last, of the end (TransferState). Throws when the transfer cannot start.
   */
  sendFile(socketFd: number, fileFd: number, start: number, end: number, onEvent: TransferListener): Transfer
  /** Stops a transfer that has not ended (onEvent is then not called again); closes its dup'd fd. */
  cancel(transfer: Transfer): void
}

/** What a transfer's onEvent hears: `sent` bytes so far, `waits` for a full socket so far. */
export type TransferListener = (state: TransferState, sent: number, waits: number, error?: Error) => void

/** A transfer's events: progress (any number), then one of the others, last. */
export const TransferState = {
  Progress: 0,
  /** All of it sent, the socket uncorked. */
  Done: 1,
  /** The file ended before the range did. */
  Short: 2,
  /** sendfile(2) or the poll failed (`error`, its code the errno's or libuv's name). */
  Failed: 3,
} as const
export type TransferState = (typeof TransferState)[keyof typeof TransferState]

/** A transfer started by sendFile. */
export type Transfer = { readonly __transfer: unique symbol }

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
        // A build from before sendFile existed: the copy path until setup rebuilds it.
        if (typeof addon.sendFile === 'function') loaded = addon as SendFileNative
      } catch {
        // Not built: the copy path serves the same bytes.
      }
    }
  }
  return loaded ?? undefined
}
