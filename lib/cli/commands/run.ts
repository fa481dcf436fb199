/** `onbus run [config]` (the daemon) and `onbus check [config]` (validation only). */
import type { Command } from 'commander'
import { stringify } from 'yaml'
import { defaultConfig } from '../../config/default.js'
import { Daemon, type DaemonLogRecord } from '../../daemon/daemon.js'
import { fail, ipcDirOption, ipcDir, jsonLine } from '../common.js'

/** After close, the process should end by itself: if it has not within this long, something leaked. */
const LEAK_GRACE_MS = 5000

export function register(program: Command): void {
  ipcDirOption(
    program
      .command('run')
      .argument('[config]', 'configuration file (YAML or JSON); without one, the simulated vehicle on loopback')
      .description('run the daemon: open the links, topics, feeds and modules of a configuration; SIGHUP reloads it, SIGTERM/SIGINT stop')
      .option('--json', 'log JSON lines (one record per event) instead of text')
      .option('--print-default', 'print the embedded default configuration (YAML) and exit'),
  ).action(async (file: string | undefined, o: { json?: boolean; printDefault?: boolean; ipcDir?: string }) => {
    if (o.printDefault) {
      process.stdout.write(stringify(defaultConfig()))
      return
    }
    const log = (r: DaemonLogRecord) => {
      if (o.json) jsonLine({ time: new Date().toISOString(), ...r })
      else process.stdout.write(`${r.text}\n`)
    }
    let daemon: Daemon | undefined
    // SIGHUP's default action ends the process: one listener from before the start to the end (a listener
    // removed and another added would lose a signal that came in between: libuv dispatches it later, to the
    // listeners of that moment). One that comes while the daemon starts (the 'ready' line is out before
    // start() returns) reloads once it is up.
    let hupWhileStarting = false
    let stopping = false
    const onHup = () => {
      if (stopping) return // closing: nothing to reload (and the default action would end the process mid-close)
      if (daemon) void daemon.reload()
      else hupWhileStarting = true
    }
    process.on('SIGHUP', onHup)
    // SIGTERM/SIGINT likewise: one that comes while the daemon starts closes it once it is up (a second one exits at once).
    let stopWhileStarting: string | undefined
    let stopFn: ((sig: string) => void) | undefined
    const early = (sig: string) => {
      if (stopFn) return stopFn(sig)
      if (stopWhileStarting) {
        process.stderr.write(`onbus run: ${sig} again while starting; exiting now\n`)
        process.exit(130)
      }
      stopWhileStarting = sig
    }
    const onTerm = () => early('SIGTERM')
    const onInt = () => early('SIGINT')
    process.on('SIGTERM', onTerm)
    process.on('SIGINT', onInt)
    try {
      daemon = await Daemon.start({ file, ipcDir: ipcDir(o), log })
    } catch (err) {
      process.removeListener('SIGHUP', onHup)
      process.removeListener('SIGTERM', onTerm)
      process.removeListener('SIGINT', onInt)
      fail(err, 'onbus run')
      return
    }
    const d = daemon
    if (hupWhileStarting && !stopWhileStarting) onHup()
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        if (stopping) {
          // A second signal while closing: the user means it.
          process.stderr.write(`onbus run: ${sig} again while closing; exiting now\n`)
          process.exit(130)
        }
        stopping = true
        log({ event: 'signal', signal: sig, text: `onbus: ${sig}, closing` })
        void d.close().then(() => {
          // Everything is closed: the process ends by itself. If it does not, say what holds it.
          setTimeout(() => {
            process.stderr.write(`onbus run: still running ${LEAK_GRACE_MS} ms after close; open handles: ${JSON.stringify(process.getActiveResourcesInfo())}\n`)
            process.exit(1)
          }, LEAK_GRACE_MS).unref()
          resolve()
        })
      }
      stopFn = stop
      if (stopWhileStarting) stop(stopWhileStarting)
    })
  })

  program
    .command('check')
    .argument('[config]', 'configuration file (default: the embedded default configuration)')
    .description('validate a configuration without opening anything')
    .option('--json', 'print the problems as JSON')
    .action(async (file: string | undefined, o: { json?: boolean }) => {
      try {
        const cfg = await Daemon.check(file)
        if (o.json) jsonLine({ ok: true, links: Object.keys(cfg.links ?? {}), topics: Object.keys(cfg.topics ?? {}), modules: Object.keys(cfg.modules ?? {}) })
        else process.stdout.write(`${file ?? '(default configuration)'}: ok (${Object.keys(cfg.links ?? {}).length} links, ${Object.keys(cfg.topics ?? {}).length} topics, ${Object.keys(cfg.modules ?? {}).length} modules)\n`)
      } catch (err) {
        if (o.json) jsonLine({ ok: false, code: (err as { code?: string }).code, issues: (err as { issues?: unknown }).issues, message: (err as Error).message })
        fail(err, 'onbus check')
      }
    })
}
