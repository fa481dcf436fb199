/**
 * Codecs: how topic values become bytes for links and transports.
 * @packageDocumentation
 */
export type { Codec, CodecValue } from './codec.js'
export { rawCodec } from './raw.js'
export { jsonCodec } from './json.js'
export { flatbuffersCodec } from './flatbuffers.js'
export type { FlatbuffersTable } from './flatbuffers.js'
