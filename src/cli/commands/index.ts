// Every verb of the CLI, in the order `hwimage --help` lists them.

import type { Command } from '../command.js'
import { buildCommand } from './build.js'
import { installCommand } from './install.js'
import { inspectCommand } from './inspect.js'
import { bootCommand } from './boot.js'
import { testCommand } from './test.js'
import { kernelCommand } from './kernel.js'
import { seedCommand } from './seed.js'
import { listenCommand } from './listen.js'

export const commands: Command[] = [buildCommand, installCommand, inspectCommand, bootCommand, testCommand, kernelCommand, seedCommand, listenCommand]
