#!/usr/bin/env node
/**
 * The `onbus` command: the daemon (`run`), introspection (`topics`, `echo`,
 * `stats`), record and replay, file transfer and the benchmark. Every
 * command lives in lib/cli/commands/<name>.ts and exports
 * `register(program)`; this file only puts them together. docs/CLI.md.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Command, CommanderError } from 'commander'
import { packageRoot } from '../daemon/daemon.js'
import { EXIT_USAGE, fail } from './common.js'
import * as run from './commands/run.js'
import * as topics from './commands/topics.js'
import * as echo from './commands/echo.js'
import * as stats from './commands/stats.js'
import * as transfer from './commands/transfer.js'
import * as bench from './commands/bench.js'

type Registrar = { register(program: Command): void }

/** Builds the program (exported for tests and embedding). */
export async function createProgram(): Promise<Command> {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }
  const program = new Command('onbus')
    .description('onbus: links, topics and modules of a vehicle, from one configuration; introspection, record and replay')
    .version(pkg.version)
    .showHelpAfterError('(add --help for usage)')
    .enablePositionalOptions()
    .exitOverride()
  const mods: Registrar[] = [run, topics, echo, stats]
  // Record and replay (lib/cli/commands/record.ts, replay.ts) come from another branch: registered when present.
  for (const spec of ['./commands/record.js', './commands/replay.js']) {
    try {
      mods.push((await import(spec)) as Registrar)
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw err
    }
  }
  mods.push(transfer, bench)
  for (const m of mods) m.register(program)
  // Subcommands exit through the same override (usage errors → exit code 2).
  for (const c of program.commands) c.exitOverride()
  return program
}

async function main(): Promise<void> {
  const program = await createProgram()
  try {
    await program.parseAsync(process.argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version "fail" with exit code 0; commander has printed the message.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE
      return
    }
    fail(err)
  }
}

await main()
