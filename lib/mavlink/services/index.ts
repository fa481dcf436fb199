/**
 * MAVLink microservices over any {@link MavlinkPort}: heartbeat, command,
 * parameter, timesync and mission clients, and JS ports for UDP, stream links
 * and in-memory tests. See docs/MAVLINK.md, "Microservices".
 */
export { HeartbeatService } from './heartbeat.js'
export type { ComponentInfo, HeartbeatOptions } from './heartbeat.js'
export { CommandClient, commandErrorCode } from './command.js'
export type { CommandClientOptions, CommandIntParams, CommandOptions, CommandResult } from './command.js'
export { ParamClient, detectParamEncoding, encodeParamValue, decodeParamValue, paramValueBits, paramSetBits, ParamValueRaw, ParamSetRaw } from './params.js'
export type { Param, ParamClientOptions, ParamEncoding } from './params.js'
export { TimesyncService } from './timesync.js'
export type { TimesyncEstimate, TimesyncOptions, TimesyncState } from './timesync.js'
export { MissionClient, missionErrorCode, itemFromMessage } from './mission.js'
export type { MissionClientOptions, MissionPlanItem } from './mission.js'
export { serviceError, addressedTo, fromTarget } from './common.js'
export type { MavlinkServiceError, MavlinkTarget } from './common.js'
export { UdpMavlinkPort, StreamMavlinkPort, MemoryMavlinkPort, JsPortBase, createMemoryPortPair, seededRandom, realtimeNs } from './js-port.js'
export type { JsPortOptions, JsPortStats, MemoryPortOptions, UdpPortOptions } from './js-port.js'
