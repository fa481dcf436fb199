/**
 * MAVLink for onbus: the generated message sets (common at the top level,
 * dialects as namespaces), v1/v2 framing, and MAVLink 2 signing.
 *
 * @example
 * import { MavlinkParser, MavlinkEncoder, Heartbeat, Attitude, MAV_TYPE } from 'onbus/mavlink'
 * const parser = new MavlinkParser()
 * parser.push(bytes, (frame) => {
 *   const att = frame.as(Attitude)
 *   if (att) console.log(att.roll, att.pitch)
 * })
 * @packageDocumentation
 */
import { DIALECT as COMMON } from './generated/common.js'
import { setDefaultDialect } from './parser.js'
import { setLinkDefaultDialect } from './link.js'

setDefaultDialect(COMMON)
setLinkDefaultDialect(COMMON)

export * from './generated/common.js'
export * as ardupilotmega from './generated/ardupilotmega.js'
export * as common from './generated/common.js'
export * as testDialect from './generated/test.js'
export { MavlinkMessage, defineDialect, enumName, flagNames } from './codec.js'
export type { DataOf, Dialect, FieldDef, FieldType, MessageClass, MessageDef } from './codec.js'
export { MavlinkFrame, decodePayload, MAX_FRAME_LENGTH, IFLAG_SIGNED, STX_V1, STX_V2 } from './frame.js'
export { MavlinkParser, REJECT_REASONS } from './parser.js'
export type { FrameParser, MavlinkParserOptions, ParserStats, RejectReason } from './parser.js'
export { MavlinkEncoder } from './encoder.js'
export type { EncodeOverrides, MavlinkEncoderOptions } from './encoder.js'
export { MavlinkSigning, SigningClock, signingTimestampFromMs, readTimestamp, writeTimestamp, SIGNING_EPOCH_MS, RADIO_STATUS_ID, NEW_STREAM_WINDOW } from './signing.js'
export type { MavlinkSigningOptions, SetupSigningFields, SigningClockOptions, SigningRejectReason } from './signing.js'
export { crcCalculate, crcAccumulate, crcExtraConsistent, CRC_INIT } from './crc.js'
export type { MavlinkPort, MavlinkFrameListener } from './port.js'
export * from './services/index.js'
export { MavlinkLink, mavlinkFraming } from './link.js'
export type { MavlinkFraming, MavlinkLinkOptions, MavlinkLinkStats, MavlinkParseOptions } from './link.js'
export { MavlinkRouter, createMavlinkRouter, mavlinkRouterConfigSchema, validateMavlinkRouterConfig } from './router.js'
export type {
  MavlinkRouterConfig,
  MavlinkRouterEndpointConfig,
  MavlinkRouterFilterRule,
  MavlinkRouterFilters,
  MavlinkRouterStats,
  MavlinkRouterEndpointStats,
  MavlinkRouterDrops,
  MavlinkRouterLearnedEvent,
  MavlinkRouterPort,
  MavlinkRouterPortOptions,
} from './router.js'
