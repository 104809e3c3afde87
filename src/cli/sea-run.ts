// The entry of hwimage as one executable (the deploy environment, src/deploy/sea.ts):
// the same CLI as src/cli/run.ts, without top-level await, which the CommonJS bundle
// a Node single executable runs cannot have.
import { main } from './main.js'

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
})
