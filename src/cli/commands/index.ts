// Every verb of the CLI, in the order `hwimage --help` lists them.

import type { Command } from '../command.js'

export const commands: Command[] = []
