export * from './udp/index.js'
export * from './stream/index.js'
export * from './serial/index.js'
export * from './tls/index.js'
