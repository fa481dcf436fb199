/**
 * Recording bus traffic to MCAP and replaying it: the recorder, replay with a
 * virtual clock, and recovery of files cut short. Design: docs/RECORD.md.
 * @packageDocumentation
 */
export { createRecorder, Recorder } from './recorder.js'
export type { RecorderOptions, RecorderSummary, RecordedTopic, RecorderDropEvent } from './recorder.js'
export { replayFile, Replayer } from './replay.js'
export type { ReplayOptions, ReplayOutput, ReplaySummary } from './replay.js'
export { VirtualClock, FollowedClock, followClock, clockSample, CLOCK_TOPIC, CLOCK_QOS } from './clock.js'
export type { ClockSample } from './clock.js'
export { recoverFile } from './recover.js'
export type { RecoverSummary } from './recover.js'
export { MAVLINK_SCHEMA_ENCODING, MAVLINK_MESSAGE_ENCODING, isMavlinkCodec, mavlinkMsgId, mavlinkSchema } from './schema.js'
export type { Compression } from './io.js'
