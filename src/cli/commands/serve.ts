// `hwimage serve CONFIG.yaml`: the rack's deploy server (src/serve/server.ts) until a
// signal stops it; one log line per request on stderr (JSON lines with --json).

import { loadServeConfig } from '../../serve/config.js'
import { dnsmasqConfig } from '../../serve/boot-answers.js'
import { startServe } from '../../serve/server.js'
import { UsageError } from '../../errors.js'
import { parseVerbArgs, type Command } from '../command.js'
import { Reporter } from '../progress.js'

const HELP = `Usage: hwimage serve CONFIG.yaml [options]

Runs the deploy server of a rack: boot answers (iPXE scripts over HTTP, a TFTP tree
with shim, GRUB and a GRUB config per MAC), the images and the deploy environment
(with Range, for resumed downloads), seeds (to the machine's token only), inventory,
progress and reports, machine state in SQLite under state_dir, and the JSON API that
\`hwimage machines\` uses. docs/deploy.md has the config format and the API.

Options:
      --json                 one JSON line per request and event on stderr
      --dnsmasq SUBNET       print a dnsmasq proxy-DHCP + TFTP configuration for
                             the network SUBNET (e.g. 192.168.1.0) and exit
      --interface IF         with --dnsmasq: the interface dnsmasq listens on
  -h, --help                 this help

Examples:
  hwimage serve rack.yaml --json
  hwimage serve rack.yaml --dnsmasq 192.168.1.0 --interface eno1 > /etc/dnsmasq.d/hwimage.conf

Tokens never appear in the log. Exit codes: 0 stopped by a signal, 1 failed, 2 bad config.
`

/** `hwimage serve`. */
export const serveCommand: Command = {
  name: 'serve',
  help: HELP,
  async run(argv, ctx) {
    const args = parseVerbArgs(
      this,
      argv,
      { json: { type: 'boolean' }, dnsmasq: { type: 'string' }, interface: { type: 'string' } },
      ctx,
    )
    if (!args) return 0
    const v = args.values as Record<string, string | boolean | undefined>
    if (args.positionals.length !== 1)
      throw new UsageError('Cannot serve: expected one CONFIG.yaml', { hint: 'hwimage serve rack.yaml' })
    const config = await loadServeConfig(args.positionals[0]!)
    if (typeof v.dnsmasq === 'string') {
      if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(v.dnsmasq))
        throw new UsageError(`Cannot write a dnsmasq configuration: "${v.dnsmasq}" is not an IPv4 network address`, {
          hint: 'e.g. --dnsmasq 192.168.1.0',
        })
      if (!config.tftpRoot)
        throw new UsageError('Cannot write a dnsmasq configuration: the config has no tftp_root', {
          hint: 'add tftp_root: /srv/hwimage/tftp',
        })
      ctx.stdout.write(
        dnsmasqConfig({
          subnet: v.dnsmasq,
          interface: typeof v.interface === 'string' ? v.interface : undefined,
          tftpRoot: config.tftpRoot,
        }),
      )
      return 0
    }
    const json = v.json === true
    const reporter = new Reporter(ctx.stderr, json)
    const serve = await startServe(config, {
      log: (r) => {
        if (json) ctx.stderr.write(JSON.stringify(r) + '\n')
        else if (r.event === 'request')
          reporter.log(
            `${String(r.remote)} ${String(r.method)} ${String(r.path)} ${String(r.status)} ${String(r.bytes)}B ${String(r.ms)}ms`,
          )
        else reporter.log(`${String(r.event)}: ${JSON.stringify(r)}`)
      },
    })
    reporter.event('listening', {
      url: serve.url,
      host: serve.host,
      port: serve.port,
      publicUrl: config.publicUrl,
      stateDb: serve.store.file,
      machines: serve.store.list().length,
    })
    reporter.log(`serving on ${serve.url} (machines reach it as ${config.publicUrl}); state in ${serve.store.file}`)
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) return resolve()
      ctx.signal.addEventListener('abort', () => resolve(), { once: true })
    })
    await serve.close()
    reporter.event('stopped')
    reporter.log('stopped')
    return 0
  },
}
