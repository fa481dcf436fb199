/** `onbus send-file` / `onbus receive-file`: the verified, resumable bulk transfer (lib/transfer) with progress bars. */
import { readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { basename } from 'node:path'
import type { Command } from 'commander'
import cliProgress from 'cli-progress'
import { createTcpLink, createTcpServer } from '../../links/stream/tcp.js'
import { createCommandLink, createCommandServer, type CommandTlsOptions } from '../../links/tls/command.js'
import { FileReceiver } from '../../transfer/receiver.js'
import { sendFile, type TransferProgress } from '../../transfer/sender.js'
import { TRANSFER_FRAMING, type TransferChannel } from '../../transfer/protocol.js'
import { fail, fmtBytes, jsonLine, untilSignal, usageError } from '../common.js'

interface TlsFlags {
  cert?: string
  key?: string
  ca?: string[]
  pin?: string[]
  insecurePlaintext?: boolean
  servername?: string
}

function tlsOptions(o: TlsFlags): CommandTlsOptions | null {
  if (!o.cert && !o.key && !o.ca && !o.pin && !o.insecurePlaintext) return null
  return {
    cert: o.cert ? readFileSync(o.cert) : undefined,
    key: o.key ? readFileSync(o.key) : undefined,
    ca: o.ca?.map((p) => readFileSync(p)),
    pins: o.pin,
    servername: o.servername,
    insecurePlaintext: o.insecurePlaintext,
  }
}

const collect = (v: string, prev: string[] = []) => [...prev, v]

function tlsFlags(cmd: Command): Command {
  return cmd
    .option('--cert <file>', 'this side’s certificate (PEM): a TLS command link instead of plain TCP')
    .option('--key <file>', 'this side’s private key (PEM)')
    .option('--ca <file>', 'CA certificate the peer must chain to (repeatable)', collect)
    .option('--pin <sha256>', 'pinned SHA-256 of the peer’s public key, base64 (repeatable)', collect)
    .option('--insecure-plaintext', 'the command-link protocol without TLS (benches and simulators only)')
}

function port(v: string): number {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw usageError(`--port must be an integer 0…65535 (got ${JSON.stringify(v)})`)
  return n
}

export function register(program: Command): void {
  tlsFlags(
    program
      .command('send-file')
      .argument('<file>', 'file to send')
      .description('send a file with verification (CRC-32C per chunk, SHA-256 of the whole) and resumption after a cut')
      .requiredOption('--port <port>', 'receiver port', port)
      .option('--host <host>', 'receiver host', '127.0.0.1')
      .option('--name <name>', 'name the receiver stores it under (default: the file’s basename)')
      .option('--servername <name>', 'TLS: the name the server certificate must carry')
      .option('--chunk-size <bytes>', 'chunk size', (v) => Number(v))
      .option('--connect-timeout <ms>', 'give up when no receiver accepted the transfer within this long (cuts after that are retried)', (v) => Number(v), 10_000)
      .option('--json', 'progress and result as JSON lines')
      .option('--no-progress', 'no progress bar'),
  ).action(async (file: string, o: TlsFlags & { port: number; host: string; name?: string; chunkSize?: number; connectTimeout: number; json?: boolean; progress: boolean }) => {
    const stop = untilSignal()
    let giveUp: NodeJS.Timeout | null = null
    let link: TransferChannel | null = null
    let bar: cliProgress.SingleBar | null = null
    try {
      const tls = tlsOptions(o)
      link = tls
        ? createCommandLink({ host: o.host, port: o.port, reconnect: true, ...tls })
        : (createTcpLink({ host: o.host, port: o.port, reconnect: true, framing: TRANSFER_FRAMING }) as unknown as TransferChannel)
      let lastError: Error | null = null
      link.on('error', (err: Error) => (lastError = err)) // reconnects; the transfer reports what it cannot get past
      ;(link as unknown as NodeJS.EventEmitter).on('reconnecting', (i: { error: Error }) => (lastError = i.error))
      const ac = new AbortController()
      stop.signal.addEventListener('abort', () => ac.abort(stop.signal.reason), { once: true })
      const noPeer = new Promise<never>((_resolve, reject) => {
        giveUp = setTimeout(() => {
          const e = Object.assign(new Error(`No receiver at ${o.host}:${o.port} accepted the transfer within ${o.connectTimeout} ms${lastError ? ` (last error: ${lastError.message})` : ''}`), { code: (lastError as { code?: string } | null)?.code ?? 'ETIMEDOUT' })
          reject(e) // first, so that the race reports this rather than the abort it causes
          ac.abort(e)
        }, o.connectTimeout)
      })
      ;(link as unknown as NodeJS.EventEmitter).on('disconnect', (i: { reason: Error }) => (lastError = i.reason))
      const t = sendFile(link, file, { name: o.name ?? basename(file), chunkSize: o.chunkSize, signal: ac.signal })
      const showBar = o.progress && !o.json && process.stderr.isTTY
      if (showBar) {
        bar = new cliProgress.SingleBar({ format: `${basename(file)} [{bar}] {percentage}% | {done}/{size} | {speed} | ETA {eta_formatted}`, hideCursor: true }, cliProgress.Presets.shades_classic)
        bar.start(1, 0, { done: '0 B', size: '?', speed: '-' })
      }
      t.on('progress', (p: TransferProgress) => {
        // The receiver accepted: from here on, cuts are resumed rather than given up on.
        if (giveUp) clearTimeout(giveUp)
        giveUp = null
        if (o.json) jsonLine({ event: 'progress', ...p })
        else if (bar) {
          bar.setTotal(Math.max(1, p.total))
          bar.update(p.bytes, { done: fmtBytes(p.bytes, false), size: fmtBytes(p.total, false), speed: fmtBytes(p.rate) })
        }
      })
      const r = await Promise.race([t.done, noPeer])
      bar?.stop()
      if (o.json) jsonLine({ event: 'done', ...r })
      else process.stdout.write(`sent ${r.name}: ${fmtBytes(r.size, false)}, sha256 ${r.sha256}${r.resumes ? `, resumed ${r.resumes}× from ${r.resumedFrom.join(', ')}` : ''}\n`)
    } catch (err) {
      bar?.stop()
      fail(err, 'onbus send-file')
    } finally {
      if (giveUp) clearTimeout(giveUp)
      stop.dispose()
      link?.close()
    }
  })

  tlsFlags(
    program
      .command('receive-file')
      .description('receive files sent with `onbus send-file` into a directory (each verified before it appears under its name)')
      .requiredOption('--dir <dir>', 'directory to write files to')
      .option('--port <port>', 'port to listen on (0: pick one, printed)', port, 0)
      .option('--host <host>', 'address to listen on', '127.0.0.1')
      .option('--once', 'exit after the first complete file')
      .option('--json', 'events as JSON lines'),
  ).action(async (o: TlsFlags & { dir: string; port: number; host: string; once?: boolean; json?: boolean }) => {
    const stop = untilSignal()
    try {
      await mkdir(o.dir, { recursive: true })
      const rx = new FileReceiver({ dir: o.dir })
      const tls = tlsOptions(o)
      const server = tls
        ? await createCommandServer({ host: o.host, port: o.port, ...tls }, (l) => rx.attach(l))
        : createTcpServer({ host: o.host, port: o.port, ...rx.linkOptions() }, (l) => rx.attach(l as unknown as TransferChannel))
      server.on('error', () => {})
      // A TLS client the server refused (no or untrusted certificate, wrong pin, plaintext): reported with the reason.
      server.on('clientError', (err: Error & { code?: string; reason?: string }, where: { address?: string; port?: number }) => {
        if (o.json) jsonLine({ event: 'refused-client', code: err.code, reason: err.reason, message: err.message, address: where.address, port: where.port })
        else process.stderr.write(`refused a client ${where.address ?? '?'}:${where.port ?? '?'}: ${err.code ?? ''} ${err.message}\n`)
      })
      const p = server.port
      if (o.json) jsonLine({ event: 'listening', host: o.host, port: p, tls: !!tls })
      else process.stdout.write(`receiving into ${o.dir} on ${o.host}:${p}${tls ? (tls.insecurePlaintext ? ' (command link, plaintext)' : ' (TLS)') : ''}\n`)
      const bars = process.stderr.isTTY && !o.json ? new cliProgress.MultiBar({ format: '{name} [{bar}] {percentage}% | {value}/{total} B', hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic) : null
      const perFile = new Map<string, cliProgress.SingleBar>()
      rx.on('progress', (e: { name: string; bytes: number; total: number }) => {
        if (o.json) return
        if (!bars) return
        let b = perFile.get(e.name)
        if (!b) perFile.set(e.name, (b = bars.create(e.total, 0, { name: e.name })))
        b.update(e.bytes)
      })
      await new Promise<void>((resolve) => {
        rx.on('file', (f: { name: string; path: string; size: number; sha256: string }) => {
          perFile.get(f.name)?.stop()
          if (o.json) jsonLine({ event: 'file', ...f })
          else {
            bars?.log(`received ${f.name}: ${fmtBytes(f.size, false)}, sha256 ${f.sha256}\n`)
            if (!bars) process.stdout.write(`received ${f.name}: ${fmtBytes(f.size, false)}, sha256 ${f.sha256} → ${f.path}\n`)
          }
          if (o.once) resolve()
        })
        rx.on('refused', (e: { name?: string; code: string; message: string }) => {
          if (o.json) jsonLine({ event: 'refused', ...e })
          else process.stderr.write(`refused ${e.name ?? '?'}: ${e.code}: ${e.message}\n`)
        })
        stop.signal.addEventListener('abort', () => resolve(), { once: true })
      })
      bars?.stop()
      await new Promise<void>((resolve) => {
        if ('secure' in server) server.close(() => resolve())
        else server.close(() => resolve(), true)
      })
    } catch (err) {
      fail(err, 'onbus receive-file')
    } finally {
      stop.dispose()
    }
  })
}
