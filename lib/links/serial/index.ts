export { createSerialLink, SerialLink } from './link.js'
export type { SerialLinkOptions } from './link.js'
export { listSerialPorts } from './list.js'
export type { SerialPortInfo } from './binding.js'
