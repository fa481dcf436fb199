export { createUdpLink, UdpLink, validateUdpOptions } from './link.js'
export type { UdpLinkOptions, UdpLinkStats, UdpMessage, UdpMessageInfo, UdpBatchHandler } from './link.js'
export { UdpBatch } from './batch.js'
