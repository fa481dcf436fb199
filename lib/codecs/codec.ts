/**
 * A codec turns a topic's values into bytes and back. In-process delivery
 * never uses it (subscribers get the published value itself, no copy); it runs
 * only where bytes are needed: a link feeding a topic (`decode`), a topic
 * feeding a link or a transport (`encode`), and the bandwidth figures
 * (`byteLength`).
 */
export interface Codec<T> {
  /** Identifies the wire format; topics of the same name must agree on it. E.g. `'raw'`, `'json'`, `'flatbuffers:onbus.example.Pose'`. */
  readonly name: string
  /** Bytes of `value`. May return a view that shares memory with `value` (zero-copy codecs do). */
  encode(value: T): Uint8Array
  /** The value in `bytes`. May keep a view of `bytes` (zero-copy codecs do): pass bytes you own. */
  decode(bytes: Uint8Array): T
  /** Encoded size without encoding, where that is cheap; lets the bus report bandwidth for in-process traffic. */
  byteLength?(value: T): number
}

/** The value type a codec carries. */
export type CodecValue<C> = C extends Codec<infer T> ? T : never
