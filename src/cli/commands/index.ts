// Every verb of the CLI, in the order `hwimage --help` lists them.

import type { Command } from '../command.js'
import { buildCommand } from './build.js'
import { inspectCommand } from './inspect.js'
import { bootCommand } from './boot.js'
import { kernelCommand } from './kernel.js'
import { seedCommand } from './seed.js'
import { listenCommand } from './listen.js'

export const commands: Command[] = [buildCommand, inspectCommand, bootCommand, kernelCommand, seedCommand, listenCommand]
