/**
 * TCP client links and servers (IPv4/IPv6).
 */
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { StreamKind, type NativeStreamSocket } from '../../../bindings/index.js'
import { invalidArgValue } from '../../errors.js'
import { validateBool, validateInt, validatePort, validateString } from '../../util/validate.js'
import { StreamLink, validateStreamOptions, type ClientLinkOptions, type Endpoint } from './link.js'
import { StreamServer, validateServerOptions, type StreamServerOptions } from './server.js'

/** Socket tuning of TCP links. */
export interface TcpTuning {
  /** TCP_NODELAY (default true: control and telemetry traffic is latency-bound). */
  noDelay?: boolean
  /** Keepalive: `true`, or idle/interval in ms and probe count. */
  keepAlive?: boolean | { idle?: number; interval?: number; count?: number }
  /** TCP_USER_TIMEOUT in ms: unacknowledged data older than this kills the connection. */
  userTimeout?: number
  /** Kernel buffer sizes in bytes. */
  rcvBuf?: number
  sndBuf?: number
}

/** Options of {@link createTcpLink}. */
export interface TcpLinkOptions extends ClientLinkOptions, TcpTuning {
  host?: string
  port: number
  /** 4 or 6 to force a family in name resolution. */
  family?: 4 | 6
  /** Local address to bind before connecting. */
  localAddress?: string
}

interface TcpTarget {
  address: string
  port: number
  family: 4 | 6
}

class TcpEndpoint implements Endpoint<TcpTarget> {
  readonly kind = StreamKind.Tcp4
  readonly openSyscall = 'socket'
  constructor(private readonly o: TcpLinkOptions) {}
  async resolve(): Promise<TcpTarget> {
    const host = this.o.host ?? 'localhost'
    const ip = isIP(host.split('%')[0])
    if (ip !== 0) return { address: host, port: this.o.port, family: ip as 4 | 6 }
    const r = await lookup(host, { family: this.o.family ?? 0 })
    return { address: r.address, port: this.o.port, family: r.family as 4 | 6 }
  }
  open(sock: NativeStreamSocket, t: TcpTarget): number {
    const r = sock.open(t.family === 6 ? StreamKind.Tcp6 : StreamKind.Tcp4)
    if (r < 0 || this.o.localAddress === undefined) return r
    return sock.bind(this.o.localAddress, 0)
  }
  connect(sock: NativeStreamSocket, t: TcpTarget): number {
    return sock.connect(t.address, t.port)
  }
  where(t: TcpTarget | undefined): { address?: string; port?: number } {
    return { address: t?.address ?? this.o.host ?? 'localhost', port: this.o.port }
  }
}

/** @internal applies TcpTuning as options re-applied at every connection */
export function presetTcp(link: StreamLink, t: TcpTuning): void {
  link._presetOption('noDelay', t.noDelay ?? true ? 1 : 0)
  if (t.keepAlive) {
    link._presetOption('keepAlive', 1)
    const k = t.keepAlive === true ? {} : t.keepAlive
    if (k.idle !== undefined) link._presetOption('keepIdle', Math.max(1, Math.round(k.idle / 1000)))
    if (k.interval !== undefined) link._presetOption('keepInterval', Math.max(1, Math.round(k.interval / 1000)))
    if (k.count !== undefined) link._presetOption('keepCount', k.count)
  }
  if (t.userTimeout !== undefined) link._presetOption('userTimeout', t.userTimeout)
  if (t.rcvBuf !== undefined) link._presetOption('rcvBuf', t.rcvBuf)
  if (t.sndBuf !== undefined) link._presetOption('sndBuf', t.sndBuf)
}

/** @internal */
export function validateTcpTuning(t: TcpTuning, prefix = 'options'): void {
  if (t.noDelay !== undefined) validateBool(t.noDelay, `${prefix}.noDelay`)
  if (t.keepAlive !== undefined && typeof t.keepAlive !== 'boolean') {
    if (t.keepAlive === null || typeof t.keepAlive !== 'object') throw invalidArgValue(`${prefix}.keepAlive`, t.keepAlive, 'must be a boolean or { idle, interval, count }')
    if (t.keepAlive.idle !== undefined) validateInt(t.keepAlive.idle, `${prefix}.keepAlive.idle`, 1000, 2 ** 31 - 1)
    if (t.keepAlive.interval !== undefined) validateInt(t.keepAlive.interval, `${prefix}.keepAlive.interval`, 1000, 2 ** 31 - 1)
    if (t.keepAlive.count !== undefined) validateInt(t.keepAlive.count, `${prefix}.keepAlive.count`, 1, 127)
  }
  if (t.userTimeout !== undefined) validateInt(t.userTimeout, `${prefix}.userTimeout`, 0, 2 ** 31 - 1)
  if (t.rcvBuf !== undefined) validateInt(t.rcvBuf, `${prefix}.rcvBuf`, 1, 2 ** 31 - 1)
  if (t.sndBuf !== undefined) validateInt(t.sndBuf, `${prefix}.sndBuf`, 1, 2 ** 31 - 1)
}

/**
 * Opens a TCP client link. Connecting is asynchronous: `'connect'` follows,
 * or `'error'` (ECONNREFUSED / ETIMEDOUT naming the address) — or, with
 * `reconnect`, `'reconnecting'` and new attempts with backoff and jitter.
 * @example
 * const link = createTcpLink({ host: '10.0.0.2', port: 5760, framing: { type: 'length' }, reconnect: true })
 * link.on('data', (frame) => handle(frame))
 */
export function createTcpLink(opts: TcpLinkOptions): StreamLink {
  validateStreamOptions(opts)
  validatePort(opts.port, 'options.port', false)
  if (opts.host !== undefined) validateString(opts.host, 'options.host')
  if (opts.family !== undefined && opts.family !== 4 && opts.family !== 6) throw invalidArgValue('options.family', opts.family, 'must be 4 or 6')
  if (opts.localAddress !== undefined) validateString(opts.localAddress, 'options.localAddress')
  validateTcpTuning(opts)
  const link = new StreamLink(opts, new TcpEndpoint(opts))
  presetTcp(link, opts)
  return link
}

/** Options of {@link createTcpServer}. */
export interface TcpServerOptions extends StreamServerOptions, TcpTuning {
  /** Default '127.0.0.1' (nothing listens on a public address unless you say so). */
  host?: string
  /** 0 (default) picks an ephemeral port, reported by `address()`. */
  port?: number
  ipv6Only?: boolean
  reusePort?: boolean
}

/**
 * Listens for TCP connections. Binding is synchronous: EADDRINUSE and
 * EACCES are thrown, Node-shaped. Connections are accepted in batches on the
 * I/O thread; each arrives as a {@link StreamLink} in `'connection'`.
 * @example
 * const server = createTcpServer({ port: 5760 }, (link) => link.on('data', echo))
 */
export function createTcpServer(opts: TcpServerOptions = {}, onConnection?: (link: StreamLink) => void): StreamServer {
  validateServerOptions(opts)
  const host = opts.host ?? '127.0.0.1'
  validateString(host, 'options.host')
  const family = isIP(host.split('%')[0])
  if (family === 0) throw invalidArgValue('options.host', host, 'must be a numeric IP address')
  const port = validatePort(opts.port ?? 0, 'options.port')
  validateTcpTuning(opts)
  const server = new StreamServer(opts, family === 6 ? StreamKind.Tcp6 : StreamKind.Tcp4, (s) => {
    if (opts.reusePort) s.option('reusePort', 1)
    if (family === 6 && opts.ipv6Only !== undefined) s.option('ipv6Only', opts.ipv6Only ? 1 : 0)
    s.bindTcp(host, port)
  }, (link) => presetTcp(link, opts))
  if (onConnection) server.on('connection', onConnection)
  return server
}
