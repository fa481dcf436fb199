export { StreamLink } from './link.js'
export type {
  StreamLinkOptions,
  ClientLinkOptions,
  StreamDataInfo,
  StreamMessage,
  StreamLinkState,
  StreamLinkStats,
  StreamBatchHandler,
  DisconnectInfo,
  ReconnectingInfo,
} from './link.js'
export { StreamBatch } from './batch.js'
export type { FramingOptions } from './framing.js'
export type { ReconnectOptions } from './backoff.js'
export { StreamServer } from './server.js'
export type { StreamServerOptions } from './server.js'
export { createTcpLink, createTcpServer } from './tcp.js'
export type { TcpLinkOptions, TcpServerOptions, TcpTuning } from './tcp.js'
export { createUnixLink, createUnixServer } from './unix.js'
export type { UnixLinkOptions, UnixServerOptions, UnixAddressOptions } from './unix.js'
