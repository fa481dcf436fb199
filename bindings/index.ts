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

/** The RTP video receiver's native half (native/rtp/rtp_receiver.h; record layout there). */
export interface NativeRtpReceiver {
  bind(ip: string, port: number, reuseAddr: boolean): number
  bindRtcp(ip: string, port: number, reuseAddr: boolean): number
  join(group: string, iface: string, source?: string): number
  setRcvBuf(bytes: number): number
  localPorts(): [number, number]
  start(data: ArrayBuffer, records: ArrayBuffer, recCap: number, config: Record<string, number>): number
  requestKeyframe(): boolean
  setBusyPoll(us: number): void
  stats(out: Float64Array): void
  ref(): void
  unref(): void
  close(): void
}

export interface NativeRtpReceiverCtor {
  new (family: 4 | 6, onFrames: (start: number, count: number) => void, onError: (errno: number) => void): NativeRtpReceiver
}

export interface NativeAddon {
  RtpReceiver: NativeRtpReceiverCtor
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
  write(list: (Uint8Array | object)[], index: number, offset: number, out: Float64Array): void
  /** sendfile(2) of `count` bytes of `fileFd` from `offset`; out as write(). */
  sendFile(fileFd: number, offset: number, count: number, out: Float64Array): void
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
  /** Spin the I/O thread this many microseconds before sleeping (0 = off). */
  setBusyPoll(us: number): void
}

export interface NativeStreamSocketCtor {
  new (onBatch: (start: number, count: number) => void, onEvent: (kind: StreamEvent, a?: number, b?: number) => void): NativeStreamSocket
  /** CRC-32C of `data` (continuing from `seed`), with the CPU's CRC instructions where present. */
  crc32c(data: Uint8Array, seed?: number): number
  /** A built-in framer as a plug-in framer external (null for a bad specification). */
  makeFramer(spec: NativeFramerSpec): object | null
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

// ---------------------------------------------------------------------------
// Cross-process bus transport (native/ipc_socket.h; lib/bus/ipc)

/** Event kinds passed to a native IPC socket's event callback (1 = a listening socket has connections to accept). */
export const IpcEvent = { Acceptable: 1, Writable: 2, Error: 4, End: 6 } as const
export type IpcEvent = (typeof IpcEvent)[keyof typeof IpcEvent]

/** [fd or 0 or -errno, peer pid, peer uid, peer gid] */
export type NativeIpcCred = [number, number, number, number]

export interface NativeIpcSocket {
  /** Binds a SOCK_SEQPACKET socket at `path` (then chmod 0600) and listens. */
  listen(path: string, backlog: number): number
  /** Connects; -EACCES when the peer runs as another uid (SO_PEERCRED). */
  connect(path: string): NativeIpcCred
  /** A pending connection's descriptor (adopt it with `new IpcSocket(.., fd)`), -EAGAIN, or -EACCES for a peer of another uid (already closed). */
  accept(): NativeIpcCred
  peerCred(): NativeIpcCred | number
  /** Receive into `ring` (slots of `slotSize`); lens[i] has bit 31 set for a truncated message; fds[i] is a received descriptor or -1. */
  startReceive(ring: ArrayBuffer, lens: Uint32Array, fds: Int32Array, slotSize: number): number
  pause(): void
  resume(): void
  /** sendmmsg of list[start, start+count); `fd` >= 0 rides on the first. Messages sent, or -errno. */
  send(list: Uint8Array[], start: number, count: number, fd: number): number
  watchWritable(): number
  ref(): void
  unref(): void
  fd(): number
  close(): void
}

export interface NativeIpcSocketCtor {
  new (onRecv: (count: number) => void, onEvent: (kind: IpcEvent, errno?: number) => void, fd?: number): NativeIpcSocket
  /** memfd_create (CLOEXEC, sealing), mode 0600, sized and sealed against resizing: fd or -errno. */
  memfdCreate(name: string, size: number): number
  /** MAP_SHARED mapping as an ArrayBuffer (unmapped when collected), or -errno. */
  map(fd: number, size: number, writable: boolean): ArrayBuffer | number
  closeFd(fd: number): number
  /** [size, seals, owner uid, mode] or -errno. */
  fdInfo(fd: number): [number, number, number, number] | number
}

/** The IPC socket class of the loaded addon. */
export const ipcNative: { IpcSocket: NativeIpcSocketCtor } = native as unknown as { IpcSocket: NativeIpcSocketCtor }
