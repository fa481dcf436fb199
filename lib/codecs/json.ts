import type { Codec } from './codec.js'

/**
 * JSON text in UTF-8. In-process subscribers get the published object itself
 * (treat it as immutable); encoding happens only towards links and
 * transports. `byteLength` is not offered (it would mean encoding), so JSON
 * topics report bandwidth only for traffic that was encoded.
 * @example
 * const status = bus.topic('mission/status', { qos: qosProfiles.state, codec: jsonCodec<{ phase: string }>() })
 */
export function jsonCodec<T>(): Codec<T> {
  return Object.freeze({
    name: 'json',
    encode: (value: T): Uint8Array => Buffer.from(JSON.stringify(value), 'utf8'),
    decode: (bytes: Uint8Array): T => JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as T,
  })
}
