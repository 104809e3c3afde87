// The process entry (bin/hwimage execs Node on dist/cli/run.js): runs the CLI with the
// process's arguments and exits with its code.
import { main } from './main.js'

process.exitCode = await main(process.argv.slice(2))
