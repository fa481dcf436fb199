/**
 * onbus: the I/O and messaging runtime for Node.js on a vehicle's companion
 * computer.
 * @packageDocumentation
 */
export * from './links/index.js'
export * from './bus/index.js'
export { errnoException } from './errors.js'
export type { OnbusSystemError } from './errors.js'
export { now, nowPair, realtimeToMonotonicOffset } from './time.js'
export type { ClockDomain } from './time.js'
export { native } from '../bindings/index.js'
export * from './transfer/index.js'
export * from './record/index.js'
