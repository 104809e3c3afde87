// How an error reaches the user: a message and a hint on stderr, or one JSON line.

import { HwimageError, ToolError } from '../errors.js'

/** Renders an error for stderr: `error[CODE]: message` plus `hint: …`, or a JSON-lines `error` event. */
export function formatError(err: unknown, opts: { json: boolean }): string {
  const e = err instanceof HwimageError ? err : null
  const code = e?.code ?? 'INTERNAL'
  const message = err instanceof Error ? err.message : String(err)
  if (opts.json) {
    const event: Record<string, unknown> = { event: 'error', code, message }
    if (e?.hint) event.hint = e.hint
    if (err instanceof ToolError) event.command = err.argv
    return JSON.stringify(event) + '\n'
  }
  let text = `hwimage: error[${code}]: ${message}\n`
  if (err instanceof ToolError && err.stderrTail && !message.includes(err.stderrTail)) {
    const tail = err.stderrTail
      .split('\n')
      .slice(-15)
      .map((l) => `  | ${l}`)
      .join('\n')
    text += `${tail}\n`
  }
  if (e?.hint) text += `hint: ${e.hint}\n`
  if (!e && err instanceof Error && process.env.HWIMAGE_DEBUG) text += `${err.stack}\n`
  return text
}
