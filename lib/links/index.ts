export * from './udp/index.js'
export * from './stream/index.js'
