// `hwimage ironic-agent`: the deploy environment's agent mode for OpenStack Ironic
// (src/ironic/agent.ts), which its /init runs when the kernel command line has ipa-api-url=.

import { readFile } from 'node:fs/promises'
import { InputError, UsageError } from '../../errors.js'
import { ironicAgentConfig } from '../../ironic/agent-cmdline.js'
import { realEffects, runIronicAgent } from '../../ironic/agent.js'
import { parseVerbArgs, type Command } from '../command.js'

const HELP = `Usage: hwimage ironic-agent [--cmdline FILE] [--api-url URL] [options]

Acts as OpenStack Ironic's agent (the ironic-python-agent protocol Ironic 21.4 speaks),
as the deploy environment does when Ironic's PXE boot started it: looks its node up by
this machine's MAC addresses, serves the agent API Ironic's conductor calls (port 9999),
heartbeats with the agent token, and runs what Ironic's direct deploy asks for:
write_image (hwimage's installer: raw or qcow2 by URL, SHA-256 verified before the
disk's first MiB is written, the config drive as a config-2 partition in the disk's last
64 MiB), get_partition_uuids, install_bootloader, power_off. A failure is reported as a
failed command: Ironic puts its reason in the node's last_error. Runs until the machine
powers off (or is interrupted). Not implemented: cleaning steps, RAID, inspection.

From the kernel command line: ipa-api-url= (Ironic writes it), ipa-advertise-host= and
ipa-advertise-port= (the address Ironic reaches this agent at, default this machine's
first IPv4 address and the listen port), ipa-listen-port= (default 9999), BOOTIF=.

Options:
      --cmdline FILE   read the kernel command line from FILE (default /proc/cmdline)
      --api-url URL    Ironic's API (overrides ipa-api-url=)
      --disk PATH      write the image onto PATH instead of the disk Ironic's root device
                       hints (or the first fixed disk) choose (tests)
      --no-power-off   on Ironic's power_off, stop the agent (exit 0) instead of powering
                       the machine off (runs outside a deploy environment, tests)
      --json           log as JSON lines on stderr
  -h, --help           this help

Exit status: 0 stopped at Ironic's power_off (--no-power-off), 1 failed or interrupted, 2 usage.

Example (what the deploy environment's /init runs):
  hwimage ironic-agent
Example (by hand, against the lab's Ironic, writing a file instead of a disk):
  echo 'ipa-api-url=http://127.0.0.1:6385 ipa-advertise-host=127.0.0.1' > /tmp/cmdline
  hwimage ironic-agent --cmdline /tmp/cmdline --disk /tmp/disk.img
`

/** \`hwimage ironic-agent\`. */
export const ironicAgentCommand: Command = {
  name: 'ironic-agent',
  help: HELP,
  async run(argv, ctx) {
    const args = parseVerbArgs(
      this,
      argv,
      {
        cmdline: { type: 'string' },
        'api-url': { type: 'string' },
        disk: { type: 'string' },
        'no-power-off': { type: 'boolean' },
        json: { type: 'boolean' },
      },
      ctx,
      false,
    )
    if (!args) return 0
    const v = args.values as Record<string, string | boolean | undefined>
    const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined)
    const file = str('cmdline') ?? '/proc/cmdline'
    let cmdline: string
    try {
      cmdline = await readFile(file, 'utf8')
    } catch (e) {
      throw new InputError('NOT_FOUND', `Cannot read the kernel command line "${file}": ${(e as Error).message}`)
    }
    const api = str('api-url')
    if (api !== undefined && !/^https?:\/\//.test(api))
      throw new UsageError(`Cannot use --api-url "${api}": expected an http:// or https:// URL`)
    const config = ironicAgentConfig(api ? `${cmdline} ipa-api-url=${api}` : cmdline)
    const json = v.json === true
    const log = (line: string) =>
      ctx.stderr.write(
        json
          ? `${JSON.stringify({ time: new Date().toISOString(), event: 'log', message: line })}\n`
          : `hwimage ironic-agent: ${line}\n`,
      )
    const effects = realEffects(log)
    const disk = str('disk')
    if (disk) effects.chooseDisk = async () => disk
    const stop = new AbortController()
    ctx.signal.addEventListener('abort', () => stop.abort())
    let poweredOff = false
    if (v['no-power-off'] === true)
      effects.powerOff = async () => {
        log('power_off: --no-power-off, so the agent stops instead')
        poweredOff = true
        stop.abort()
      }
    await runIronicAgent({ config, log, effects, signal: stop.signal })
    return poweredOff ? 0 : 1
  },
}
