// `hwimage deploy-agent`: what the deploy environment's /init runs. Parse, run the agent
// (src/deploy/agent.ts), print its steps on stderr.

import { readFile } from 'node:fs/promises'
import { agentIdentity } from '../../deploy/agent-cmdline.js'
import { type AgentOptions, runAgent, runAgentRetrying } from '../../deploy/agent.js'
import { InputError, UsageError } from '../../errors.js'
import { parseVerbArgs, type Command } from '../command.js'

const HELP = `Usage: hwimage deploy-agent [--cmdline FILE] [--url URL --mac MAC --token TOKEN] [options]

Runs one network deploy on this machine, as the deploy environment does after it
boots: sends the inventory to hwimage serve, asks what to do, and when told to
install, installs the assigned image and seed onto the disk the machine's disk
hints choose (the same installer as \`hwimage install\`: verified, first MiB last),
reporting progress (at most twice a second) and the install report. On UEFI the
installed shim becomes the next boot (efibootmgr, BootNext); then it reboots.
Any failure is reported to serve with its error code and the log's tail, and the
agent stays (exit 1, no reboot): an operator can redeploy.

Where serve is, and who this machine is, come from the kernel command line serve's
boot answer wrote: hwimage.url=, hwimage.mac= (or BOOTIF=01-…), hwimage.token=
(or hwimage.enlist=1: ask serve for a token). Flags override it; prefer the
command line for the token (flags are visible to other processes).

Options:
      --cmdline FILE   read the kernel command line from FILE (default /proc/cmdline)
      --url URL        serve's public URL
      --mac MAC        this machine's MAC (the NIC it booted from)
      --token TOKEN    its one-time token
      --disk PATH      install onto PATH instead of the disk the hints choose (tests)
      --no-reboot      stop after the install instead of rebooting
      --poll SECONDS   how often to ask again while serve says wait (default 15)
      --retry SECONDS  after a failure, stay and ask serve again this often, so an
                       operator's assign retries in place (a redeploy revokes the
                       token: the machine reboots into a new network boot)
      --sysfs DIR, --procfs DIR, --devfs DIR
                       read the inventory from another tree (tests)
  -h, --help           this help

Exit status: 0 installed (or rebooting), 1 failed or told to stay, 2 usage.

Example (what the deploy environment's /init runs):
  hwimage deploy-agent --retry 30
Example (by hand, against a serve on the LAN, without rebooting):
  hwimage deploy-agent --cmdline /tmp/cmdline --no-reboot
`

/** `hwimage deploy-agent`. */
export const deployAgentCommand: Command = {
  name: 'deploy-agent',
  help: HELP,
  async run(argv, ctx) {
    const args = parseVerbArgs(
      this,
      argv,
      {
        cmdline: { type: 'string' },
        url: { type: 'string' },
        mac: { type: 'string' },
        token: { type: 'string' },
        disk: { type: 'string' },
        'no-reboot': { type: 'boolean' },
        poll: { type: 'string' },
        retry: { type: 'string' },
        sysfs: { type: 'string' },
        procfs: { type: 'string' },
        devfs: { type: 'string' },
      },
      ctx,
      false,
    )
    if (!args) return 0
    const v = args.values as Record<string, string | boolean | undefined>
    const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined)
    const cmdlineFile = str('cmdline') ?? '/proc/cmdline'
    let cmdline = ''
    try {
      cmdline = await readFile(cmdlineFile, 'utf8')
    } catch (e) {
      if (str('cmdline') !== undefined)
        throw new InputError(
          'NOT_FOUND',
          `Cannot read the kernel command line "${cmdlineFile}": ${(e as Error).message}`,
        )
    }
    const given = {
      ...(str('url') ? { url: str('url')! } : {}),
      ...(str('mac') ? { mac: str('mac')! } : {}),
      ...(str('token') ? { token: str('token')! } : {}),
    }
    const identity = agentIdentity(cmdline, given)
    const poll = str('poll')
    if (poll !== undefined && !(Number(poll) > 0))
      throw new UsageError(`Cannot use --poll "${poll}": expected a number of seconds above 0`)
    const retry = str('retry')
    if (retry !== undefined && !(Number(retry) > 0))
      throw new UsageError(`Cannot use --retry "${retry}": expected a number of seconds above 0`)
    const roots = {
      ...(str('sysfs') ? { sysfs: str('sysfs')! } : {}),
      ...(str('procfs') ? { procfs: str('procfs')! } : {}),
      ...(str('devfs') ? { devfs: str('devfs')! } : {}),
    }
    const agentOpts: AgentOptions = {
      identity,
      roots,
      ...(str('disk') ? { disk: str('disk')! } : {}),
      reboot: v['no-reboot'] !== true,
      ...(poll !== undefined ? { pollMs: Number(poll) * 1000 } : {}),
      log: (line) => ctx.stderr.write(`hwimage deploy-agent: ${line}\n`),
      signal: ctx.signal,
    }
    const r =
      retry === undefined
        ? await runAgent(agentOpts)
        : await runAgentRetrying({ ...agentOpts, retryMs: Number(retry) * 1000 })
    return r.outcome === 'stopped' ? 1 : 0
  },
}
