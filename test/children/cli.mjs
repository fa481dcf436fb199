// The record and replay commands as `onbus` runs them, without the rest of the CLI:
//   node cli.mjs record ... | node cli.mjs replay ...
import { Command } from 'commander'
import * as record from '../../dist/lib/cli/commands/record.js'
import * as replay from '../../dist/lib/cli/commands/replay.js'

const program = new Command('onbus')
record.register(program)
replay.register(program)
await program.parseAsync(process.argv)
