/**
 * Unix-domain stream and seqpacket links: a filesystem path, or a name in
 * Linux's abstract namespace (no file, gone with the last socket).
 */
import { chmodSync, unlinkSync } from 'node:fs'
import { StreamKind, type NativeStreamSocket } from '../../../bindings/index.js'
import { invalidArgValue } from '../../errors.js'
import { validateBool, validateInt, validateString } from '../../util/validate.js'
import { StreamLink, validateStreamOptions, type ClientLinkOptions, type Endpoint } from './link.js'
import { StreamServer, validateServerOptions, type StreamServerOptions } from './server.js'

/** Where a Unix socket lives. */
export interface UnixAddressOptions {
  /** Filesystem path, or the abstract name when `abstract` is true. */
  path: string
  /** Linux abstract namespace (no file on disk). Default false. */
  abstract?: boolean
  /** `'stream'` (default) or `'seqpacket'` (message boundaries kept; each record is one message). */
  type?: 'stream' | 'seqpacket'
}

export type UnixLinkOptions = ClientLinkOptions & UnixAddressOptions

class UnixEndpoint implements Endpoint<null> {
  readonly kind: StreamKind
  readonly openSyscall = 'socket'
  constructor(private readonly o: UnixLinkOptions) {
    this.kind = o.type === 'seqpacket' ? StreamKind.Seqpacket : StreamKind.Unix
  }
  async resolve(): Promise<null> {
    return null
  }
  open(sock: NativeStreamSocket): number {
    return sock.open(this.kind)
  }
  connect(sock: NativeStreamSocket): number {
    return sock.connectUnix(this.o.path, this.o.abstract ?? false)
  }
  where(): { address?: string; port?: number } {
    return { address: this.o.abstract ? `@${this.o.path}` : this.o.path }
  }
}

function validateUnixAddress(o: UnixAddressOptions): void {
  validateString(o.path, 'options.path')
  if (o.path.length === 0) throw invalidArgValue('options.path', o.path, 'must not be empty')
  if (Buffer.byteLength(o.path) > (o.abstract ? 107 : 107)) throw invalidArgValue('options.path', o.path, 'is longer than a Unix socket address holds (107 bytes)')
  if (o.abstract !== undefined) validateBool(o.abstract, 'options.abstract')
  if (o.type !== undefined && o.type !== 'stream' && o.type !== 'seqpacket') throw invalidArgValue('options.type', o.type, "must be 'stream' or 'seqpacket'")
}

/**
 * Connects to a Unix socket.
 * @example
 * const link = createUnixLink({ path: 'onbus-planner', abstract: true, type: 'seqpacket' })
 */
export function createUnixLink(opts: UnixLinkOptions): StreamLink {
  validateStreamOptions(opts)
  validateUnixAddress(opts)
  if (opts.type === 'seqpacket' && opts.framing !== undefined && opts.framing !== 'raw')
    throw invalidArgValue('options.framing', opts.framing, "must be 'raw' on a seqpacket link (each message is a record)")
  return new StreamLink(opts, new UnixEndpoint(opts))
}

/** Options of {@link createUnixServer}. */
export interface UnixServerOptions extends StreamServerOptions, UnixAddressOptions {
  /** Permissions of the socket file (default 0o600: owner only). Ignored for abstract names, which have none: check `peerCredentials()`. */
  mode?: number
}

/**
 * Listens on a Unix socket. A filesystem socket gets owner-only permissions
 * by default and its file is removed when the server closes. Binding is
 * synchronous (EADDRINUSE if the path or abstract name is taken).
 * @example
 * const server = createUnixServer({ path: '/run/onbus/bus.sock' }, (link) => ...)
 */
export function createUnixServer(opts: UnixServerOptions, onConnection?: (link: StreamLink) => void): StreamServer {
  validateServerOptions(opts)
  validateUnixAddress(opts)
  if (opts.mode !== undefined) validateInt(opts.mode, 'options.mode', 0, 0o777)
  const kind = opts.type === 'seqpacket' ? StreamKind.Seqpacket : StreamKind.Unix
  const abstract = opts.abstract ?? false
  const server = new StreamServer(opts, kind, (s) => {
    s.bindUnix(opts.path, abstract)
    if (!abstract) chmodSync(opts.path, opts.mode ?? 0o600)
  })
  if (!abstract) {
    server._onClose(() => {
      try {
        unlinkSync(opts.path)
      } catch {
        // already gone
      }
    })
  }
  if (onConnection) server.on('connection', onConnection)
  return server
}
