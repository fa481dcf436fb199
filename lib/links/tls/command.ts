/**
 * Command links: the channel that carries commands to or from the vehicle.
 *
 * TLS 1.3 only, with mutual certificate authentication: the client proves
 * itself with a certificate just as the server does. Trust is either a
 * private CA (`ca`), or pinned public keys (`pins`: SHA-256 of the peer's
 * SubjectPublicKeyInfo, base64 — what `openssl pkey -pubin -outform der |
 * openssl dgst -sha256 -binary | base64` prints), or both (then the peer
 * must chain to the CA *and* match a pin). Node's `tls` carries the channel
 * (OpenSSL underneath); onbus adds the policy, clear refusals, reconnection
 * and the link lifecycle shared by every onbus link.
 *
 * Plaintext is refused unless the configuration says `insecurePlaintext:
 * true`, which prints a warning every time such a link opens and is visible
 * as `link.secure === false`.
 */
import { EventEmitter } from 'node:events'
import { createHash, X509Certificate } from 'node:crypto'
import * as net from 'node:net'
import * as tls from 'node:tls'
import { invalidArgType, invalidArgValue, onbusError } from '../../errors.js'
import { validateFunction, validateInt, validatePort, validateString } from '../../util/validate.js'
import { backoffDelay, parseReconnect, type Backoff, type ReconnectOptions } from '../stream/backoff.js'
import { whenAborted } from '../../util/abort.js'

type Pem = string | Buffer

/** Credentials and trust of one side of a command link. */
export interface CommandTlsOptions {
  /** This side's certificate chain (PEM). */
  cert?: Pem
  /** This side's private key (PEM). */
  key?: Pem
  /** Private CA certificate(s) the peer must chain to (PEM). */
  ca?: Pem | Pem[]
  /** Pinned SHA-256 hashes (base64) of the peer's public key (SPKI); `'sha256/'` prefixes are accepted. */
  pins?: string[]
  /** Client only: the name the server certificate must carry (default: the host). */
  servername?: string
  /**
   * Allow a plaintext channel (no TLS, no authentication). Only for a
   * bench or a simulator: onbus warns every time such a link opens.
   */
  insecurePlaintext?: boolean
}

export interface CommandLinkOptions extends CommandTlsOptions {
  host?: string
  port: number
  /** Reconnect after a failure or a lost connection (default false). */
  reconnect?: boolean | ReconnectOptions
  /** Give up one attempt after this many ms (default 10,000). */
  connectTimeout?: number
  signal?: AbortSignal
  /** `write()` returns false above this many queued bytes (default 65,536). */
  highWaterMark?: number
}

export interface CommandServerOptions extends CommandTlsOptions {
  /** Default '127.0.0.1'. */
  host?: string
  port?: number
  signal?: AbortSignal
}

/** Who is at the other end, as proven by its certificate. */
export interface CommandPeer {
  subject: string
  issuer: string
  /** SHA-256 of the peer's SPKI, base64 (the value `pins` holds). */
  pin: string
  fingerprint256: string
  validTo: string
}

/** Base64 SHA-256 of a certificate's public key (its SPKI), the value to pin. */
export function publicKeyPin(certPem: Pem): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' })
  return createHash('sha256').update(spki).digest('base64')
}

function normPins(pins: string[] | undefined): Set<string> | null {
  if (!pins) return null
  return new Set(pins.map((p) => p.replace(/^sha256\//, '')))
}

function validateTls(o: CommandTlsOptions, side: 'client' | 'server'): void {
  if (o.insecurePlaintext !== undefined && typeof o.insecurePlaintext !== 'boolean') throw invalidArgType('options.insecurePlaintext', 'of type boolean', o.insecurePlaintext)
  if (o.insecurePlaintext) return
  if (o.cert === undefined || o.key === undefined)
    throw onbusError('ERR_ONBUS_PLAINTEXT_REFUSED', `A command link needs its own certificate and key (mutual TLS): give options.cert and options.key, or say insecurePlaintext: true for an unauthenticated ${side}`)
  if (o.ca === undefined && o.pins === undefined)
    throw onbusError('ERR_ONBUS_TLS_NO_TRUST', 'A command link needs a trust anchor for its peer: options.ca (a private CA) and/or options.pins (public-key pins)')
  if (o.pins !== undefined) {
    if (!Array.isArray(o.pins) || o.pins.length === 0) throw invalidArgValue('options.pins', o.pins, 'must be a non-empty array of base64 SHA-256 SPKI hashes')
    for (const p of o.pins) if (typeof p !== 'string' || !/^(sha256\/)?[A-Za-z0-9+/]{43}=$/.test(p)) throw invalidArgValue('options.pins', p, 'must hold base64 SHA-256 hashes (44 characters)')
  }
}

function warnPlaintext(what: string): void {
  process.emitWarning(`onbus: ${what} is a PLAINTEXT command link: no encryption, no authentication (insecurePlaintext: true)`, { code: 'ONBUS_PLAINTEXT_COMMAND_LINK' })
}

/**
 * Checks the peer of an established TLS socket against the pins and the
 * certificate's dates. Returns an error to refuse with, or null.
 */
function checkPeer(sock: tls.TLSSocket, pins: Set<string> | null, caGiven: boolean): Error | null {
  const cert = peerCert(sock)
  if (!cert) return onbusError('ERR_ONBUS_TLS_NO_PEER_CERT', 'The peer presented no certificate (mutual TLS is required on command links)')
  if (caGiven && !sock.authorized) return tlsRefusal(sock.authorizationError as unknown as Error | string)
  const now = Date.now()
  if (Date.parse(cert.validTo) < now) return withCode(onbusError('ERR_ONBUS_TLS_REFUSED', `The peer certificate expired on ${cert.validTo}`), 'CERT_HAS_EXPIRED')
  if (Date.parse(cert.validFrom) > now) return withCode(onbusError('ERR_ONBUS_TLS_REFUSED', `The peer certificate is not valid before ${cert.validFrom}`), 'CERT_NOT_YET_VALID')
  if (pins) {
    const pin = createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('base64')
    if (!pins.has(pin)) return withCode(onbusError('ERR_ONBUS_TLS_PIN_MISMATCH', `The peer's public key (sha256/${pin}) matches no pinned key`), 'ERR_ONBUS_TLS_PIN_MISMATCH')
  }
  return null
}

function withCode(e: Error & { code: string }, reason: string): Error & { code: string; reason: string } {
  const r = e as Error & { code: string; reason: string }
  r.reason = reason
  return r
}

/** Turns OpenSSL's verification codes into a sentence a person can act on. */
function tlsRefusal(e: Error | string | null | undefined): Error & { code: string; reason: string } {
  const code = typeof e === 'string' ? e : ((e as { code?: string } | null)?.code ?? (e as Error | null)?.message ?? 'UNKNOWN')
  const text: Record<string, string> = {
    CERT_HAS_EXPIRED: 'the peer certificate has expired',
    CERT_NOT_YET_VALID: 'the peer certificate is not valid yet',
    UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the peer certificate is not signed by the trusted CA',
    UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the peer certificate is not signed by the trusted CA',
    SELF_SIGNED_CERT_IN_CHAIN: 'the peer certificate chains to an untrusted (self-signed) CA',
    DEPTH_ZERO_SELF_SIGNED_CERT: 'the peer certificate is self-signed and not pinned',
    ERR_TLS_CERT_ALTNAME_INVALID: 'the server certificate does not carry the expected name',
    ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'the server requires a client certificate',
    ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'the peer rejected our certificate',
    ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'the peer does not trust the CA of our certificate',
    ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: 'the peer says our certificate has expired',
    ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: 'the peer does not speak TLS 1.3',
    ERR_SSL_UNSUPPORTED_PROTOCOL: 'the peer does not speak TLS 1.3',
  }
  const msg = text[code] ?? (typeof e === 'string' ? e : (e as Error | null)?.message ?? code)
  return withCode(onbusError('ERR_ONBUS_TLS_REFUSED', `TLS refused: ${msg} (${code})`), code)
}

function baseTls(o: CommandTlsOptions): tls.SecureContextOptions & { minVersion: 'TLSv1.3'; maxVersion: 'TLSv1.3' } {
  return { cert: o.cert, key: o.key, ca: o.ca, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }
}

/** Link state. */
export type CommandLinkState = 'connecting' | 'connected' | 'reconnecting' | 'closed'

/**
 * A command link (one connection, client or accepted). Events: `'connect'`
 * (after the handshake and the peer checks), `'data'`, `'drain'`, `'end'`,
 * `'disconnect'` ({ reason }), `'reconnecting'` ({ attempt, delay, error }),
 * `'error'`, `'close'`.
 */
export class CommandLink extends EventEmitter {
  private sock: net.Socket | null = null
  private stateValue: CommandLinkState = 'connecting'
  private readonly backoff: Backoff | null
  private attempt = 0
  private timer: NodeJS.Timeout | null = null
  private refed = true
  private abortCleanup: (() => void) | undefined
  private queue: { data: Buffer; cb?: (err: Error | null) => void }[] = []
  private readonly hwm: number
  private rxBytes = 0
  private txBytes = 0
  private connects = 0
  private disconnects = 0
  /** True for TLS, false for an `insecurePlaintext` link. */
  readonly secure: boolean
  /** The authenticated peer (null before the handshake or on plaintext). */
  peer: CommandPeer | null = null

  /** @internal */
  constructor(
    private readonly dialer: (() => net.Socket) | null,
    opts: { reconnect?: boolean | ReconnectOptions; signal?: AbortSignal; highWaterMark?: number; secure: boolean },
    private readonly connectTimeout = 10_000,
    private readonly verify: ((s: net.Socket) => Error | null) | null = null,
    accepted?: net.Socket,
  ) {
    super()
    this.secure = opts.secure
    this.backoff = dialer ? parseReconnect(opts.reconnect) : null
    this.hwm = opts.highWaterMark ?? 65536
    if (accepted) {
      this.attach(accepted)
      this.stateValue = 'connected'
      this.connects++
    } else {
      process.nextTick(() => this.dial())
    }
    if (opts.signal) this.abortCleanup = whenAborted(opts.signal, () => this.close(), process.nextTick)
  }

  get state(): CommandLinkState {
    return this.stateValue
  }

  get closed(): boolean {
    return this.stateValue === 'closed'
  }

  private dial(): void {
    if (this.stateValue === 'closed' || !this.dialer) return
    const s = this.dialer()
    this.sock = s
    if (!this.refed) s.unref()
    const ready = this.secure ? 'secureConnect' : 'connect'
    const fail = (err: Error) => {
      cleanup()
      s.destroy()
      if (this.sock === s) this.sock = null
      if (this.stateValue !== 'closed') this.retryOrFail(err)
    }
    const onError = (err: Error) => fail(this.secure && /^(ERR_SSL|ERR_TLS|CERT_|UNABLE_|SELF_SIGNED|DEPTH_ZERO)/.test((err as { code?: string }).code ?? '') ? tlsRefusal(err) : err)
    const onClose = () => fail(onbusError('ERR_ONBUS_PEER_CLOSED', 'The peer closed the connection during the handshake'))
    const timer = setTimeout(() => fail(Object.assign(onbusError('ETIMEDOUT', `connect ETIMEDOUT: no handshake within ${this.connectTimeout} ms`), { errno: -110, syscall: 'connect' })), this.connectTimeout)
    if (!this.refed) timer.unref()
    const cleanup = () => {
      clearTimeout(timer)
      s.off('error', onError)
      s.off('close', onClose)
      s.off(ready, onReady)
    }
    const onReady = () => {
      cleanup()
      const bad = this.verify?.(s) ?? null
      if (bad) {
        s.destroy()
        if (this.sock === s) this.sock = null
        this.retryOrFail(bad)
        return
      }
      this.attach(s)
      this.stateValue = 'connected'
      this.attempt = 0
      this.connects++
      if (!this.secure) warnPlaintext(`the link to ${s.remoteAddress}:${s.remotePort}`)
      this.emit('connect')
      this.flush()
    }
    s.once('error', onError)
    s.once('close', onClose)
    s.once(ready, onReady)
  }

  private attach(s: net.Socket): void {
    this.sock = s
    if (s instanceof tls.TLSSocket) this.peer = describePeer(s)
    s.setNoDelay(true)
    s.on('data', (d: Buffer) => {
      this.rxBytes += d.length
      this.emit('data', d)
    })
    s.on('drain', () => this.emit('drain'))
    s.on('end', () => this.emit('end'))
    s.on('error', (err) => {
      if (this.sock === s) this.lost(err)
    })
    s.on('close', () => {
      if (this.sock === s) this.lost(onbusError('ERR_ONBUS_PEER_CLOSED', 'The peer closed the connection'))
    })
  }

  private lost(reason: Error): void {
    const s = this.sock
    if (!s || this.stateValue !== 'connected') return
    this.sock = null
    s.destroy()
    this.disconnects++
    this.stateValue = 'reconnecting'
    this.emit('disconnect', { reason })
    if (this.state === 'closed') return
    if (this.backoff) this.retryOrFail(reason)
    else this.close()
  }

  private retryOrFail(err: Error): void {
    const b = this.backoff
    if (b && this.attempt < b.maxAttempts) {
      this.attempt++
      const delay = backoffDelay(b, this.attempt)
      this.stateValue = 'reconnecting'
      this.emit('reconnecting', { attempt: this.attempt, delay, error: err })
      if (this.state !== 'reconnecting') return
      this.timer = setTimeout(() => {
        this.timer = null
        if (this.stateValue !== 'reconnecting') return
        this.stateValue = 'connecting'
        this.dial()
      }, delay)
      if (!this.refed) this.timer.unref()
      return
    }
    this.emit('error', err)
    this.close()
  }

  /** Writes `data`; returns false above `highWaterMark` (then `'drain'`). Queued until connected. */
  write(data: Uint8Array | string, cb?: (err: Error | null) => void): boolean {
    if (cb !== undefined) validateFunction(cb, 'callback')
    const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    if (this.stateValue === 'closed') {
      const err = onbusError('ERR_STREAM_DESTROYED', 'write after the link closed')
      if (cb) process.nextTick(cb, err)
      return false
    }
    this.txBytes += buf.length
    if (this.stateValue === 'connected' && this.sock) return this.sock.write(buf, (err) => cb?.(err ?? null))
    this.queue.push({ data: buf, cb })
    return this.queue.reduce((n, q) => n + q.data.length, 0) < this.hwm
  }

  private flush(): void {
    const q = this.queue
    this.queue = []
    for (const { data, cb } of q) this.sock?.write(data, (err) => cb?.(err ?? null))
  }

  /** Half-closes after queued data. */
  end(data?: Uint8Array | string): this {
    if (data !== undefined) this.write(data)
    this.sock?.end()
    return this
  }

  stats(): { rxBytes: number; txBytes: number; connects: number; disconnects: number } {
    return { rxBytes: this.rxBytes, txBytes: this.txBytes, connects: this.connects, disconnects: this.disconnects }
  }

  ref(): this {
    this.refed = true
    this.sock?.ref()
    this.timer?.ref()
    return this
  }

  unref(): this {
    this.refed = false
    this.sock?.unref()
    this.timer?.unref()
    return this
  }

  /** Closes now; idempotent; `'close'` on the next tick. */
  close(cb?: () => void): this {
    if (this.stateValue === 'closed') {
      if (cb) process.nextTick(cb)
      return this
    }
    this.stateValue = 'closed'
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    const s = this.sock
    this.sock = null
    s?.destroy()
    this.abortCleanup?.()
    const err = onbusError('ERR_STREAM_DESTROYED', 'the link closed')
    for (const { cb: qcb } of this.queue.splice(0)) if (qcb) process.nextTick(qcb, err)
    if (cb) this.once('close', cb)
    process.nextTick(() => this.emit('close'))
    return this
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.stateValue === 'closed') return
    await new Promise<void>((resolve) => this.close(() => resolve()))
  }
}

// Node 20 hands a TLS 1.3 client the peer certificate only on the first call
// of getPeerX509Certificate(): keep it.
const certs = new WeakMap<tls.TLSSocket, X509Certificate | undefined>()
function peerCert(s: tls.TLSSocket): X509Certificate | undefined {
  if (!certs.has(s)) certs.set(s, s.getPeerX509Certificate?.())
  return certs.get(s)
}

function describePeer(s: tls.TLSSocket): CommandPeer | null {
  const c = peerCert(s)
  if (!c) return null
  return {
    subject: c.subject,
    issuer: c.issuer,
    pin: createHash('sha256').update(c.publicKey.export({ type: 'spki', format: 'der' })).digest('base64'),
    fingerprint256: c.fingerprint256,
    validTo: c.validTo,
  }
}

/**
 * Opens a command link to a server: TLS 1.3, mutual certificates, trust by
 * private CA and/or public-key pins.
 * @example
 * const cmd = createCommandLink({ host: 'gcs.local', port: 7443, cert, key, ca, reconnect: true })
 * cmd.on('connect', () => cmd.write(arm))
 */
export function createCommandLink(opts: CommandLinkOptions): CommandLink {
  if (opts === null || typeof opts !== 'object') throw invalidArgType('options', 'of type object', opts)
  validatePort(opts.port, 'options.port', false)
  const host = opts.host ?? 'localhost'
  validateString(host, 'options.host')
  if (opts.connectTimeout !== undefined) validateInt(opts.connectTimeout, 'options.connectTimeout', 1, 2 ** 31 - 1)
  validateTls(opts, 'client')
  parseReconnect(opts.reconnect)
  const secure = !opts.insecurePlaintext
  const pins = normPins(opts.pins)
  const caGiven = opts.ca !== undefined
  const dialer = secure
    ? () =>
        tls.connect({
          host,
          port: opts.port,
          ...baseTls(opts),
          servername: opts.servername ?? (net.isIP(host) ? undefined : host),
          // OpenSSL checks the chain (and the name, when `servername` is
          // given); checkPeer() refuses with its reason before any data is
          // written. With pins only, the pin is the trust anchor.
          rejectUnauthorized: false,
          checkServerIdentity: caGiven && opts.servername !== undefined ? tls.checkServerIdentity : () => undefined,
        })
    : () => net.connect({ host, port: opts.port })
  return new CommandLink(dialer, { ...opts, secure }, opts.connectTimeout ?? 10_000, secure ? (s) => checkPeer(s as tls.TLSSocket, pins, caGiven) : null)
}

/**
 * A command server. Events: `'connection'` (CommandLink, authenticated),
 * `'clientError'` (err, { address, port }): a refused client, with the reason
 * (`ERR_ONBUS_TLS_REFUSED` + `reason` such as CERT_HAS_EXPIRED or
 * UNABLE_TO_VERIFY_LEAF_SIGNATURE, `ERR_ONBUS_TLS_PLAINTEXT_REFUSED` for a
 * client that did not speak TLS, `ERR_ONBUS_TLS_NO_PEER_CERT`,
 * `ERR_ONBUS_TLS_PIN_MISMATCH`), `'listening'`, `'close'`, `'error'`.
 */
export class CommandServer extends EventEmitter {
  /** @internal */
  constructor(private readonly server: net.Server, readonly secure: boolean) {
    super()
  }

  /** The bound port. */
  get port(): number {
    const a = this.server.address()
    return a && typeof a === 'object' ? a.port : 0
  }

  address(): net.AddressInfo | string | null {
    return this.server.address()
  }

  ref(): this {
    this.server.ref()
    return this
  }

  unref(): this {
    this.server.unref()
    return this
  }

  close(cb?: () => void): this {
    this.server.close(() => cb?.())
    return this
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

/**
 * Listens for command links. Resolves once listening (EADDRINUSE rejects).
 * @example
 * const srv = await createCommandServer({ port: 7443, cert, key, ca }, (link) => link.on('data', onCommand))
 */
export async function createCommandServer(opts: CommandServerOptions, onConnection?: (link: CommandLink) => void): Promise<CommandServer> {
  if (opts === null || typeof opts !== 'object') throw invalidArgType('options', 'of type object', opts)
  validateTls(opts, 'server')
  const host = opts.host ?? '127.0.0.1'
  const port = validatePort(opts.port ?? 0, 'options.port')
  const secure = !opts.insecurePlaintext
  const pins = normPins(opts.pins)
  const caGiven = opts.ca !== undefined
  let wrapper: CommandServer
  const clientError = (err: Error, s: net.Socket | undefined) => {
    const where = { address: s?.remoteAddress, port: s?.remotePort }
    wrapper.emit('clientError', err, where)
  }
  const accept = (s: net.Socket) => {
    const link = new CommandLink(null, { secure, signal: undefined }, undefined, null, s)
    if (!secure) warnPlaintext(`the connection from ${s.remoteAddress}:${s.remotePort}`)
    onConnection?.(link)
    wrapper.emit('connection', link)
  }
  let server: net.Server
  if (secure) {
    // rejectUnauthorized stays false so that OpenSSL finishes the handshake
    // and tells why (authorizationError); checkPeer() then refuses before a
    // single byte of the client's data is read, with that reason.
    server = tls.createServer({ ...baseTls(opts), requestCert: true, rejectUnauthorized: false }, (s) => {
      const bad = checkPeer(s, pins, caGiven)
      if (bad) {
        clientError(bad, s)
        s.destroy()
        return
      }
      accept(s)
    })
    server.on('tlsClientError', (err: Error & { code?: string }, s: tls.TLSSocket) => {
      const what = `${err.code ?? ''} ${err.message}`
      if (/WRONG_VERSION_NUMBER|HTTP_REQUEST|UNKNOWN_PROTOCOL|PACKET_LENGTH_TOO_LONG/i.test(what)) {
        clientError(withCode(onbusError('ERR_ONBUS_TLS_PLAINTEXT_REFUSED', `Refused a client that did not speak TLS (plaintext on a command link): ${err.code ?? err.message}`), err.code ?? ''), s)
        return
      }
      clientError(tlsRefusal(err), s)
    })
  } else {
    server = net.createServer(accept)
  }
  await new Promise<void>((resolve, reject) => {
    const onErr = (err: Error) => reject(err)
    server.once('error', onErr)
    server.listen(port, host, () => {
      server.off('error', onErr)
      resolve()
    })
  })
  wrapper = new CommandServer(server, secure)
  server.on('error', (err) => wrapper.emit('error', err))
  if (opts.signal) opts.signal.addEventListener('abort', () => wrapper.close(), { once: true })
  return wrapper
}
