/**
 * Stream servers (TCP, Unix stream, Unix seqpacket): listen synchronously,
 * accept in batches on the I/O thread, hand each connection over as a
 * {@link StreamLink}.
 */
import { EventEmitter } from 'node:events'
import { streamNative, StreamKind, type NativeStreamServer, type NativeStreamAddress } from '../../../bindings/index.js'
import { errnoException, invalidArgType } from '../../errors.js'
import { validateFunction, validateInt } from '../../util/validate.js'
import { addressObject, StreamLink, validateStreamOptions, type StreamLinkOptions } from './link.js'
import { whenAborted } from '../../util/abort.js'

/** Options shared by stream servers; the link options apply to every accepted connection. */
export interface StreamServerOptions extends StreamLinkOptions {
  /** listen() backlog (default 511, as Node). */
  backlog?: number
  /** Connections beyond this many open ones are closed at once (default Infinity). */
  maxConnections?: number
}

/** @internal the socket-level steps of one server kind */
export interface ServerSetup {
  option(name: string, v: number): void
  bindTcp(host: string, port: number): void
  bindUnix(path: string, abstract: boolean): void
}

/**
 * A listening stream server. Events: `'listening'`, `'connection'` (link),
 * `'error'` (accept failures such as EMFILE; accepting resumes after 100 ms),
 * `'close'`.
 */
export class StreamServer extends EventEmitter {
  private srv: NativeStreamServer | null
  private readonly linkOpts: StreamLinkOptions
  private readonly kind: StreamKind
  private readonly maxConnections: number
  private readonly connections = new Set<StreamLink>()
  private closing = false
  private refed = true
  private resumeTimer: NodeJS.Timeout | null = null
  private cleanup: (() => void)[] = []
  private accepted = 0
  private rejected = 0

  /** @internal use createTcpServer / createUnixServer */
  constructor(opts: StreamServerOptions, kind: StreamKind, bind: (s: ServerSetup) => void, onLink?: (link: StreamLink) => void) {
    super()
    this.kind = kind
    this.linkOpts = opts
    this.maxConnections = opts.maxConnections ?? Infinity
    const srv: NativeStreamServer = new streamNative.StreamServer(
      (peers) => this.onAccept(srv, peers, onLink),
      (errno) => this.onAcceptError(errno),
    )
    this.srv = srv
    let where: { address?: string; port?: number } = {}
    try {
      const check = (r: number, syscall: string) => {
        if (r < 0) throw errnoException(r, syscall, where.address, where.port)
      }
      check(srv.open(kind), 'socket')
      bind({
        option: (name, v) => check(srv.setOption(name, v), 'setsockopt'),
        bindTcp: (host, port) => {
          where = { address: host, port }
          check(srv.setOption('reuseAddr', 1), 'setsockopt')
          check(srv.bind(host, port), 'bind')
        },
        bindUnix: (path, abstract) => {
          where = { address: abstract ? `@${path}` : path }
          check(srv.bindUnix(path, abstract), 'bind')
        },
      })
      check(srv.listen(opts.backlog ?? 511), 'listen')
      srv.ref()
    } catch (err) {
      srv.close()
      this.srv = null
      throw err
    }
    if (opts.signal) this.cleanup.push(whenAborted(opts.signal, () => this.close(), process.nextTick))
    process.nextTick(() => {
      if (this.srv) this.emit('listening')
    })
  }

  /** @internal runs when the server closes (unlinks a Unix socket path) */
  _onClose(fn: () => void): void {
    this.cleanup.push(fn)
  }

  private onAccept(srv: NativeStreamServer, peers: NativeStreamAddress[], onLink?: (link: StreamLink) => void): void {
    for (let i = 0; i < peers.length && this.srv === srv; i++) {
      if (this.connections.size >= this.maxConnections) {
        this.rejected++
        continue // not taken: closed by native code when this call returns
      }
      const fd = srv.take(i)
      if (fd < 0) continue
      const kind = this.kind === StreamKind.Tcp6 || this.kind === StreamKind.Tcp4 ? (peers[i][2] === 6 ? StreamKind.Tcp6 : StreamKind.Tcp4) : this.kind
      let link: StreamLink
      try {
        link = new StreamLink({ ...this.linkOpts, signal: undefined }, null, { fd, kind })
      } catch (err) {
        this.emit('error', err)
        continue
      }
      this.accepted++
      onLink?.(link)
      if (!this.refed) link.unref()
      this.connections.add(link)
      link.once('close', () => this.connections.delete(link))
      this.emit('connection', link)
    }
  }

  private onAcceptError(errno: number): void {
    const err = errnoException(errno, 'accept')
    if (this.listenerCount('error') > 0) this.emit('error', err)
    // EMFILE and friends: wait for descriptors to come back, then resume.
    this.resumeTimer = setTimeout(() => {
      this.resumeTimer = null
      this.srv?.resume()
    }, 100)
    if (!this.refed) this.resumeTimer.unref()
  }

  /** The bound address: `{ address, family, port }` (TCP) or `{ path, abstract }` (Unix). */
  address(): ReturnType<typeof addressObject> {
    const r = this.srv?.localAddress()
    return addressObject(r)
  }

  /** The bound TCP port (0 for Unix servers). */
  get port(): number {
    const r = this.srv?.localAddress()
    return Array.isArray(r) && r[2] > 0 ? r[1] : 0
  }

  /** Open connections accepted by this server. */
  get connectionCount(): number {
    return this.connections.size
  }

  /** Accepted and refused (over `maxConnections`) connections so far. */
  stats(): { accepted: number; rejected: number; open: number } {
    return { accepted: this.accepted, rejected: this.rejected, open: this.connections.size }
  }

  get listening(): boolean {
    return this.srv !== null
  }

  ref(): this {
    if (!this.refed) {
      this.refed = true
      this.srv?.ref()
      this.resumeTimer?.ref()
    }
    return this
  }

  unref(): this {
    if (this.refed) {
      this.refed = false
      this.srv?.unref()
      this.resumeTimer?.unref()
    }
    return this
  }

  /**
   * Stops listening. Idempotent; `'close'` follows on the next tick. Open
   * connections stay open unless `closeConnections` is true.
   */
  close(cb?: () => void, closeConnections = false): this {
    if (cb !== undefined) validateFunction(cb, 'callback')
    if (!this.srv) {
      if (cb) {
        if (this.closing) this.once('close', cb)
        else process.nextTick(cb)
      }
      return this
    }
    const srv = this.srv
    this.srv = null
    this.closing = true
    srv.close()
    if (this.resumeTimer) clearTimeout(this.resumeTimer)
    for (const fn of this.cleanup.splice(0)) fn()
    if (closeConnections) for (const l of [...this.connections]) l.close()
    if (cb) this.once('close', cb)
    process.nextTick(() => {
      this.closing = false
      this.emit('close')
    })
    return this
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.srv && !this.closing) return
    await new Promise<void>((resolve) => this.close(() => resolve(), true))
  }
}

/** @internal */
export function validateServerOptions(opts: StreamServerOptions): void {
  if (opts === null || typeof opts !== 'object') throw invalidArgType('options', 'of type object', opts)
  validateStreamOptions(opts)
  if (opts.backlog !== undefined) validateInt(opts.backlog, 'options.backlog', 0, 65535)
  if (opts.maxConnections !== undefined && opts.maxConnections !== Infinity) validateInt(opts.maxConnections, 'options.maxConnections', 0, 2 ** 31 - 1)
}

