// The agent's command records, as ironic-python-agent keeps them and Ironic 21.4 reads
// them (ironic/drivers/modules/agent_client.py, agent_base.py): every POST /v1/commands/
// makes one; GET /v1/commands/ lists them all, oldest first, and Ironic looks at the last
// one named like the method it called (the part after the dot: "deploy.execute_deploy_step"
// → "execute_deploy_step"). command_error is null or a dict: Ironic calls .get('type') on it
// and shows details (or message) in the node's last_error.

import { randomUUID } from 'node:crypto'

export type CommandStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED'

/** The error dict of a failed command (IPA's RESTError serialisation). */
export interface CommandError {
  type: string
  code: number
  message: string
  details: string
}

/** One command record, serialised exactly as Ironic reads it. */
export interface CommandRecord {
  id: string
  command_name: string
  command_params: Record<string, unknown>
  command_status: CommandStatus
  command_error: CommandError | null
  command_result: unknown
}

/** A command's outcome: its result, or an error turned into a FAILED record. */
export class CommandFailure extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly details: string = message,
    readonly code = 500,
  ) {
    super(message)
  }
}

/** What a handler is: synchronous commands finish before the POST answers, async ones run on. */
export interface CommandHandler {
  async: boolean
  run(params: Record<string, unknown>): Promise<unknown>
}

/** Refused before a record is made: Ironic reads `faultstring` from the HTTP body. */
export class CommandRefused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

/** The agent's commands: known handlers, the records so far, at most one running at a time. */
export class CommandStore {
  readonly records: CommandRecord[] = []
  private running: Promise<void> | undefined

  constructor(
    private readonly handlers: Record<string, CommandHandler>,
    private readonly onFinished: (record: CommandRecord) => void = () => {},
  ) {}

  /** Starts `name` ("extension.command"); resolves when it finished (sync, or wait) or started (async). */
  async execute(name: string, params: Record<string, unknown>, wait: boolean): Promise<CommandRecord> {
    const handler = this.handlers[name]
    if (!handler) throw new CommandRefused(404, `Unknown command: ${name}`)
    const current = this.records.at(-1)
    if (this.running && current?.command_status === 'RUNNING')
      throw new CommandRefused(409, `Agent is busy: ${current.command_name} is still running`)
    const record: CommandRecord = {
      id: randomUUID(),
      command_name: name.includes('.') ? name.slice(name.indexOf('.') + 1) : name,
      command_params: params,
      command_status: 'RUNNING',
      command_error: null,
      command_result: null,
    }
    this.records.push(record)
    const done = (async () => {
      try {
        record.command_result = await handler.run(params)
        record.command_status = 'SUCCEEDED'
      } catch (e) {
        record.command_status = 'FAILED'
        record.command_error = toCommandError(e)
      } finally {
        this.running = undefined
        this.onFinished(record)
      }
    })()
    this.running = done
    if (!handler.async || wait) await done
    return record
  }

  /** Resolves when no command runs (tests, shutdown). */
  async idle(): Promise<void> {
    await this.running
  }
}

/** Any thrown value as IPA's error dict. */
export function toCommandError(e: unknown): CommandError {
  if (e instanceof CommandFailure) return { type: e.type, code: e.code, message: e.message, details: e.details }
  const err = e instanceof Error ? e : new Error(String(e))
  const code = (err as { code?: unknown }).code
  const hint = (err as { hint?: unknown }).hint
  const details = `${typeof code === 'string' ? `${code}: ` : ''}${err.message}${typeof hint === 'string' ? ` (${hint})` : ''}`
  return { type: typeof code === 'string' ? code : err.name, code: 500, message: err.message, details }
}
