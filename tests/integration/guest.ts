// What the boot tests share to reach a guest: a free loopback port (for slirp's hostfwd or a
// server the guest calls back), an SSH key and the seed's user `ops` over a forwarded port,
// and the next first-boot report from a listener. Used by first-boot.test.ts,
// deploy-e2e.test.ts (make test), tests/deploy/ and tests/4kn/.

import { createServer } from 'node:net'
import { readFile } from 'node:fs/promises'
import type { ReceivedReport, ReportListener } from '../../src/seed/report-listener.js'
import { run } from '../../src/tools/run.js'

/** A TCP port free on 127.0.0.1 now. */
export async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const port = (srv.address() as { port: number }).port
  await new Promise<void>((resolve) => srv.close(() => resolve()))
  return port
}

/** A new ed25519 key pair at `path` (no passphrase); returns the public key's line. */
export async function sshKey(path: string, comment: string): Promise<string> {
  await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path])
  return (await readFile(`${path}.pub`, 'utf8')).trim()
}

/** The seed lines of the user `ops` (sudo) with `publicKey`, as the boot tests' seeds give it. */
export function opsUser(publicKey: string): string[] {
  return ['users:', '  - name: ops', '    sudo: true', `    ssh_authorized_keys: [${JSON.stringify(publicKey)}]`]
}

/** ssh as `ops` with `key` to the guest's port forwarded to 127.0.0.1:`port`. */
export const sshArgv = (key: string, port: number, command: string[]): string[] => [
  'ssh',
  '-i',
  key,
  '-o',
  'StrictHostKeyChecking=no',
  '-o',
  'UserKnownHostsFile=/dev/null',
  '-o',
  'BatchMode=yes',
  '-o',
  'ConnectTimeout=20',
  '-o',
  'LogLevel=ERROR',
  '-p',
  String(port),
  'ops@127.0.0.1',
  ...command,
]

/** Runs `command` over SSH (it must succeed); its trimmed stdout. */
export async function ssh(key: string, port: number, ...command: string[]): Promise<string> {
  return (await run(sshArgv(key, port, command))).stdout.trim()
}

/** Waits for the listener's next report, or rejects after `ms`. */
export async function nextReport(listener: ReportListener, ms: number): Promise<ReceivedReport> {
  const it = listener.reports[Symbol.asyncIterator]()
  let timer: NodeJS.Timeout | undefined
  try {
    const r = await Promise.race([
      it.next(),
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`no report within ${ms / 1000} s`)), ms)),
      ),
    ])
    if (r.done) throw new Error('the listener closed without a report')
    return r.value
  } finally {
    clearTimeout(timer)
  }
}
