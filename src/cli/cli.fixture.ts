// Runs `hwimage ARGS` from the sources in a child process (main() through tsx), collecting
// stdout, stderr and how it ended: the CLI tests' one way to run the real verb.

import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url))

/** How a CLI run ended, and what it printed. */
export interface CliResult {
  status: number | null
  signal: string | null
  stdout: string
  stderr: string
}

/** Starts `hwimage ARGS`; stdin is a pipe the caller ends (or 'ignore'). */
export function spawnCli(
  args: string[],
  opts: { stdin?: 'pipe' | 'ignore'; env?: Record<string, string> } = {},
): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `import { main } from ${JSON.stringify(MAIN)}; process.exitCode = await main(process.argv.slice(1))`,
      ...args,
    ],
    { stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } },
  )
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (b: Buffer) => (stdout += b))
  child.stderr!.on('data', (b: Buffer) => (stderr += b))
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr })),
  )
  return { child, done }
}
