/**
 * The one place that loads the native addon and declares its shape.
 * No logic lives here: argument checking and error shaping are in `lib/`.
 *
 * Lookup order (node-gyp-build): `prebuilds/<platform>-<arch>/` first, then the
 * local cmake-js build in `build/Release`. `ONBUS_ADDON=/path/onbus.node`
 * overrides both (sanitizer builds, cross-compiled addons under QEMU).
 */
import { createRequire } from 'node:module'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)

/** Wake kinds passed to a native socket's event callback. */
export const NativeEvent = { Writable: 2, TxStamp: 3, Error: 4 } as const
export type NativeEvent = (typeof NativeEvent)[keyof typeof NativeEvent]

export interface NativeUdpSocket {
  bind(ip: string, port: number): number
  connect(ip: string, port: number): number
  disconnect(): number
  localAddress(): [string, number, 4 | 6] | number
  remoteAddress(): [string, number, 4 | 6] | number
  setOption(name: string, value: number): number
  getOption(name: string): number
  bindDevice(name: string): number
  membership(op: 'join' | 'leave' | 'interface', group: string, iface: string, source?: string): number
  startReceive(ring: ArrayBuffer, meta: ArrayBuffer, slotSize: number, slots: number, metaCap: number): number
  parseDest(ip: string, port: number): Uint8Array | number
  send(data: Uint8Array | Uint8Array[], start: number, count: number, dest: Uint8Array | null, gsoSize: number, out: Int32Array): void
  watchWritable(): number
  stats(out: Float64Array): void
  ref(): void
  unref(): void
  setBusyPoll(us: number): void
  fd(): number
  close(): void
}

export interface NativeUdpSocketCtor {
  new (
    family: 4 | 6,
    onBatch: (start: number, count: number) => void,
    onEvent: (kind: NativeEvent, a?: number, b?: number, c?: number) => void,
  ): NativeUdpSocket
}

export interface NativeAddon {
  UdpSocket: NativeUdpSocketCtor
  /** Nanoseconds on a clock: 0 realtime, 1 monotonic, 2 monotonic raw, 3 TAI. */
  clockNs(domain: number): bigint
  /** Writes [seconds, nanoseconds] of a clock into `out` without allocating. */
  clockPair(domain: number, out: Float64Array): void
  features(): { sizeofTimeT: number; sizeofPointer: number; metaWords: number; sanitize: boolean }
}

/** The package root: the nearest directory above this file with onbus's package.json. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const pj = join(dir, 'package.json')
    if (existsSync(pj)) {
      try {
        if (JSON.parse(readFileSync(pj, 'utf8')).name === 'onbus') return dir
      } catch {
        // unreadable package.json: keep climbing
      }
    }
    const up = dirname(dir)
    if (up === dir) throw new Error('onbus: cannot find the package root above ' + fileURLToPath(import.meta.url))
    dir = up
  }
}

function load(): NativeAddon {
  const override = process.env.ONBUS_ADDON
  if (override) return require(override) as NativeAddon
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeAddon
  return nodeGypBuild(packageRoot())
}

/** The loaded addon (one instance per Node environment / worker thread). */
export const native: NativeAddon = load()

// ---------------------------------------------------------------------------
// Stream links (native/stream_socket.h, native/stream_server.h; lib/links/stream)

/** Event kinds passed to a native stream socket's event callback. */
export const StreamEvent = { Writable: 2, Error: 4, Connect: 5, End: 6, FrameError: 7 } as const
export type StreamEvent = (typeof StreamEvent)[keyof typeof StreamEvent]

/** Kinds of stream descriptor. */
export const StreamKind = { Tcp4: 1, Tcp6: 2, Unix: 3, Seqpacket: 4, Tty: 5 } as const
export type StreamKind = (typeof StreamKind)[keyof typeof StreamKind]

/** Built-in framer specification, or an external made by another native class (`WrapFramer`). */
export type NativeFramerSpec =
  | { kind: 'length'; lengthSize: number; littleEndian: boolean; lengthOffset: number; adjust: number; magic?: Uint8Array }
  | { kind: 'delimited'; delimiter: Uint8Array; includeDelimiter: boolean; skipEmpty: boolean }
  | object

/** [address or path, port, family 4 | 6 (0 = Unix path, -1 = abstract)] */
export type NativeStreamAddress = [string, number, number]

export interface NativeStreamSocket {
  open(kind: StreamKind): number
  /** Takes ownership of `fd`, or of a duplicate of it when `dup` is true. */
  adopt(fd: number, kind: StreamKind, dup?: boolean): number
  bind(ip: string, port: number): number
  /** 0 connected, 1 in progress (Connect event follows), or -errno. */
  connect(ip: string, port: number): number
  connectUnix(path: string, abstract: boolean): number
  setOption(name: string, value: number): number
  getOption(name: string): number
  setFramer(spec: NativeFramerSpec | null): number
  startReceive(ring: ArrayBuffer, meta: ArrayBuffer, metaCap: number, maxFrame: number, minRead: number): number
  /** out: [bytes written, errno that stopped it (0 = all offered went), buffers completed] */
  write(list: Uint8Array[], index: number, offset: number, out: Float64Array): void
  watchWritable(): number
  shutdown(): number
  localAddress(): NativeStreamAddress | number
  remoteAddress(): NativeStreamAddress | number
  peerCred(): [number, number, number] | number
  stats(out: Float64Array): void
  ref(): void
  unref(): void
  fd(): number
  close(): void
}

export interface NativeStreamSocketCtor {
  new (onBatch: (start: number, count: number) => void, onEvent: (kind: StreamEvent, a?: number, b?: number) => void): NativeStreamSocket
}

export interface NativeStreamServer {
  open(kind: StreamKind): number
  setOption(name: string, value: number): number
  bind(ip: string, port: number): number
  bindUnix(path: string, abstract: boolean): number
  listen(backlog: number): number
  /** The descriptor of connection `i` of the batch being handed over (adopt it at once). */
  take(i: number): number
  resume(): void
  localAddress(): NativeStreamAddress | number
  ref(): void
  unref(): void
  fd(): number
  close(): void
}

export interface NativeStreamServerCtor {
  new (onAccept: (peers: NativeStreamAddress[]) => void, onError: (errno: number) => void): NativeStreamServer
}

export interface NativeStreamAddon {
  StreamSocket: NativeStreamSocketCtor
  StreamServer: NativeStreamServerCtor
}

/** The stream classes of the loaded addon. */
export const streamNative: NativeStreamAddon = native as unknown as NativeStreamAddon
