/**
 * FlatBuffers: the binary schema codec. Reading a field is an offset lookup in
 * the received bytes; nothing is parsed or copied up front, so a subscriber
 * that reads three fields of a large message pays for three fields. Why
 * FlatBuffers and not Cap'n Proto or Protocol Buffers: docs/BUS.md.
 */
import { ByteBuffer } from 'flatbuffers'
import type { Codec } from './codec.js'
import { invalidArgType, onbusError } from '../errors.js'

/** The shape of a table accessor that `flatc --ts` generates. */
export interface FlatbuffersTable {
  bb: ByteBuffer | null
  bb_pos: number
}

/**
 * A codec for one root table type, from the generated `getRootAs…` function.
 *
 * The value type is the generated accessor: `decode` wraps the bytes (one
 * `ByteBuffer` and one accessor object, no copy), `encode` returns a view of
 * the bytes the accessor reads. To publish what a `Builder` made:
 * `publisher.publish(Pose.getRootAsPose(builder.dataBuffer()))` and then leave
 * that builder alone (its bytes now belong to the subscribers), or start the
 * next message with a new builder.
 *
 * @param name the schema's fully qualified root type, for the codec name
 * @example
 * import { Pose } from './pose_generated.js'
 * const poses = bus.topic('nav/pose', { qos: qosProfiles.sensorData, codec: flatbuffersCodec('onbus.example.Pose', Pose.getRootAsPose) })
 * poses.subscribe((pose) => steer(pose.x(), pose.y()))
 */
export function flatbuffersCodec<T extends FlatbuffersTable>(name: string, getRoot: (bb: ByteBuffer) => T): Codec<T> {
  if (typeof name !== 'string') throw invalidArgType('name', 'of type string', name)
  if (typeof getRoot !== 'function') throw invalidArgType('getRoot', 'of type function', getRoot)
  return Object.freeze({
    name: `flatbuffers:${name}`,
    encode(value: T): Uint8Array {
      const bb = value.bb
      if (!bb) throw onbusError('ERR_ONBUS_CODEC', 'flatbuffers: the accessor is not bound to a buffer')
      return bb.bytes().subarray(bb.position())
    },
    decode(bytes: Uint8Array): T {
      // FlatBuffers' JavaScript runtime has no verifier: offsets that point
      // past the end read as zeros (typed-array reads out of range), never as
      // foreign memory. Bytes from an untrusted link can therefore decode to
      // junk values: check ranges that matter before acting on them.
      if (bytes.byteLength < 8) throw onbusError('ERR_ONBUS_CODEC', `flatbuffers: ${bytes.byteLength} bytes is too short for a root table`)
      return getRoot(new ByteBuffer(bytes))
    },
    byteLength(value: T): number {
      const bb = value.bb
      return bb ? bb.capacity() - bb.position() : 0
    },
  })
}
