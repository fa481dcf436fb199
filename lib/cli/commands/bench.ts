/** `onbus bench [args…]`: runs the benchmark suite (dist/bench/run.js), arguments passed through. */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from 'commander'
import { packageRoot } from '../../daemon/daemon.js'
import { fail } from '../common.js'
import { onbusError } from '../../errors.js'

export function register(program: Command): void {
  program
    .command('bench')
    .description('run the benchmarks (dist/bench/run.js); every argument is passed through, e.g. --quick, --only udp')
    .argument('[args...]', 'arguments for the benchmark runner')
    .allowUnknownOption()
    .passThroughOptions()
    .action(async (args: string[]) => {
      const script = join(packageRoot(), 'dist', 'bench', 'run.js')
      if (!existsSync(script)) {
        fail(onbusError('ERR_ONBUS_NOT_BUILT', `${script} does not exist: run \`npm run build:ts\` first`), 'onbus bench')
        return
      }
      const child = spawn(process.execPath, [script, ...args], { stdio: 'inherit' })
      const fwd = (s: NodeJS.Signals) => child.kill(s)
      process.on('SIGINT', fwd)
      process.on('SIGTERM', fwd)
      const code = await new Promise<number>((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 128 + 15 : 1))))
      process.removeListener('SIGINT', fwd)
      process.removeListener('SIGTERM', fwd)
      process.exitCode = code
    })
}
