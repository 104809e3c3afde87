// `hwimage listen --port N`: receives first-boot reports and prints one JSON line each.

import { HwimageError, InterruptedError, UsageError } from '../../errors.js'
import { listenForReports } from '../../seed/report-listener.js'
import { parseVerbArgs, type Command } from '../command.js'
import { Reporter } from '../progress.js'

const HELP = `Usage: hwimage listen --port N [options]

Receives the reports machines POST when first boot is done (the seed's report.url)
and prints each as one JSON line on stdout:
  {"received":"…","remote":"10.0.2.15:40312","method":"POST","path":"/",
   "contentType":"application/json","report":{"instance_id":"…","hostname":"…",…}}
JSON bodies are parsed; form data (cloud-init phone_home) becomes an object.

Options:
      --port N        port to listen on (0: any free port, printed on stderr)
      --host ADDR     address to bind (default 0.0.0.0)
      --count K       exit 0 after K reports
      --timeout S     stop after S seconds; with --count, fewer than K reports is a failure
      --json          stderr events as JSON lines (the "listening" event carries the port)
  -h, --help          this help

Exit codes: 0 done, 1 timed out before --count reports, 2 usage, 130 interrupted.
`

/** `hwimage listen`. */
export const listenCommand: Command = {
  name: 'listen',
  help: HELP,
  async run(argv, ctx) {
    const args = parseVerbArgs(
      this,
      argv,
      {
        port: { type: 'string' },
        host: { type: 'string' },
        count: { type: 'string' },
        timeout: { type: 'string' },
        json: { type: 'boolean' },
      },
      ctx,
      false,
    )
    if (!args) return 0
    const v = args.values as Record<string, string | boolean | undefined>
    const reporter = new Reporter(ctx.stderr, v.json === true)
    if (typeof v.port !== 'string')
      throw new UsageError('Cannot listen: --port N is required', { hint: 'hwimage listen --port 8080' })
    const port = integer(v.port, '--port', 0, 65535)
    const count = typeof v.count === 'string' ? integer(v.count, '--count', 1, Number.MAX_SAFE_INTEGER) : undefined
    const timeout = typeof v.timeout === 'string' ? integer(v.timeout, '--timeout', 1, 2 ** 31 / 1000) : undefined
    const host = typeof v.host === 'string' ? v.host : '0.0.0.0'

    const listener = await listenForReports({ port, host })
    reporter.event('listening', { host: listener.host, port: listener.port })
    reporter.log(
      `listening on http://${listener.host}:${listener.port}/${count ? ` for ${count} report${count > 1 ? 's' : ''}` : ''}`,
    )
    let timedOut = false
    const timer =
      timeout === undefined ? undefined : setTimeout(() => ((timedOut = true), void listener.close()), timeout * 1000)
    const onAbort = () => void listener.close()
    ctx.signal.addEventListener('abort', onAbort, { once: true })
    let received = 0
    try {
      for await (const r of listener.reports) {
        ctx.stdout.write(JSON.stringify(r) + '\n')
        received++
        if (count !== undefined && received >= count) break
      }
    } finally {
      clearTimeout(timer)
      ctx.signal.removeEventListener('abort', onAbort)
      await listener.close()
    }
    if (ctx.signal.aborted)
      throw new InterruptedError(`Interrupted after ${received} report${received === 1 ? '' : 's'}`)
    if (timedOut && count !== undefined && received < count) {
      throw new HwimageError('NETWORK', `Cannot receive reports: ${received} of ${count} arrived within ${timeout} s`, {
        hint: "check that the machine booted and can reach this host and port (the seed's report.url)",
      })
    }
    return 0
  },
}

function integer(text: string, flag: string, min: number, max: number): number {
  const n = Number(text)
  if (!/^\d+$/.test(text) || n < min || n > max)
    throw new UsageError(`Cannot use ${flag} "${text}": expected a whole number from ${min} to ${max}`)
  return n
}
