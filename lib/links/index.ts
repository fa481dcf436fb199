export * from './udp/index.js'
