/**
 * MAVLink 2 message signing (https://mavlink.io/en/guide/message_signing.html).
 *
 * A signed frame carries 13 more bytes after the CRC: link id (1), timestamp
 * (6, little-endian, 10 µs units since 2015-01-01 00:00:00 UTC) and signature
 * (6): the first 6 bytes of sha256(secret key (32) + header + payload + CRC +
 * link id + timestamp).
 *
 * Acceptance follows the specification: the signature must match; a known
 * stream (system id, component id, link id) must move its timestamp forward;
 * a new stream must not be more than one minute behind the local timestamp;
 * the local timestamp follows the newest accepted one. onbus adds one bound:
 * a frame more than `maxFutureSkewMs` ahead of the local timestamp is refused,
 * so one bad clock cannot ratchet a stream (and our own timestamp) far forward
 * and lock out everything sent afterwards.
 */
import * as crypto from 'node:crypto'
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { invalidArgType, invalidArgValue, outOfRange } from '../errors.js'

/** 2015-01-01T00:00:00Z in ms since the Unix epoch. */
export const SIGNING_EPOCH_MS = Date.UTC(2015, 0, 1)
/** Timestamp units per millisecond (the unit is 10 µs). */
export const UNITS_PER_MS = 100
/** A new stream may start at most this far behind the local timestamp (one minute). */
export const NEW_STREAM_WINDOW = 6_000_000
const MAX_TIMESTAMP = 2 ** 48 - 1
/** RADIO_STATUS: the specification's example of a message a radio sends unsigned. */
export const RADIO_STATUS_ID = 109

/** Converts a wall-clock time (ms since the Unix epoch) to a signing timestamp. */
export function signingTimestampFromMs(ms: number): number {
  return Math.max(0, Math.floor((ms - SIGNING_EPOCH_MS) * UNITS_PER_MS))
}

function wallClockMs(): number {
  // performance gives sub-millisecond resolution, which keeps consecutive
  // timestamps near real time instead of piling +1 steps on one Date.now()
  return performance.timeOrigin + performance.now()
}

export interface SigningClockOptions {
  /**
   * File that keeps the timestamp across restarts. It holds a value no
   * timestamp issued so far has reached (a reservation), written and fsynced
   * before any timestamp beyond it is issued, so a crash or power loss can
   * never make the next run reuse a timestamp.
   */
  file?: string
  /** How far ahead each reservation reaches (ms); one file write per this much time. Default 60 000. */
  reserveMs?: number
  /** Wall clock in ms since the Unix epoch (tests inject one). */
  clock?: () => number
}

/**
 * The local signing timestamp: monotonic (never repeats, never goes back, even
 * across restarts when a file is given), close to wall-clock time when the
 * clock is right, and raised by newer timestamps seen on accepted frames.
 */
export class SigningClock {
  private last: number
  private reserved: number
  private readonly file: string | undefined
  private readonly reserveUnits: number
  private readonly clock: () => number

  constructor(options: SigningClockOptions = {}) {
    this.file = options.file
    this.reserveUnits = Math.max(1, Math.floor((options.reserveMs ?? 60_000) * UNITS_PER_MS))
    this.clock = options.clock ?? wallClockMs
    this.last = 0
    this.reserved = Infinity
    if (this.file !== undefined) {
      let saved = 0
      try {
        const text = readFileSync(this.file, 'utf8').trim()
        if (!/^\d{1,15}$/.test(text)) throw invalidArgValue('options.file', this.file, `does not hold a signing timestamp (${JSON.stringify(text.slice(0, 20))})`)
        saved = Number(text)
      } catch (err) {
        // a missing file is a first start; anything else must not be guessed over
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      }
      this.last = saved
      this.reserved = saved
    }
  }

  /** The current local timestamp (10 µs units since 2015), without issuing it. */
  now(): number {
    return Math.max(this.last, signingTimestampFromMs(this.clock()))
  }

  /** @internal A value {@link now} never goes below (the last timestamp issued or observed), without reading the clock. */
  floor(): number {
    return this.last
  }

  /** Issues a timestamp for an outgoing frame: strictly greater than every one before. */
  next(): number {
    let t = signingTimestampFromMs(this.clock())
    if (t <= this.last) t = this.last + 1
    if (t > MAX_TIMESTAMP) throw outOfRange('signing timestamp', 'below 2^48', t)
    if (t > this.reserved) this.reserve(t)
    this.last = t
    return t
  }

  /** Raises the local timestamp to at least `t` (a newer timestamp seen on an accepted frame). */
  observe(t: number): void {
    if (t > this.last) {
      if (t > this.reserved) this.reserve(t)
      this.last = t
    }
  }

  /** Writes the current timestamp to the file now (e.g. before a planned shutdown). */
  flush(): void {
    if (this.file !== undefined) this.persist(Math.max(this.now(), this.last))
  }

  private reserve(t: number): void {
    const r = Math.min(MAX_TIMESTAMP, t + this.reserveUnits)
    this.persist(r)
    this.reserved = r
  }

  private persist(value: number): void {
    const file = this.file as string
    const tmp = `${file}.tmp`
    const fd = openSync(tmp, 'w', 0o600)
    try {
      writeSync(fd, `${value}\n`)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, file)
  }
}

// Key generations, unique across all MavlinkSigning objects (a native parser
// reports which key checked a frame, see lib/mavlink/link.ts).
let keyGenerations = 0

/** Why a frame was refused; the parser counts each under its own name. */
export type SigningRejectReason = 'unsigned' | 'bad_signature' | 'replay' | 'stale_timestamp' | 'future_timestamp' | 'stream_limit'

export interface MavlinkSigningOptions {
  /** 32-byte secret key. All zeros (as SETUP_SIGNING uses it) means signing is off. */
  key: Uint8Array
  /** Link id put on outgoing frames (0-255). Default 0. */
  linkId?: number
  /** Incoming unsigned frames are refused unless `allowUnsigned` accepts them. Default true. */
  requireSigned?: boolean
  /**
   * Exceptions for unsigned frames on a link that requires signing: message
   * ids, or a function of (msgid, sysid, compid). Default: RADIO_STATUS (109),
   * which radios insert unsigned.
   */
  allowUnsigned?: readonly number[] | ((msgid: number, sysid: number, compid: number) => boolean)
  /** Refuse frames more than this far ahead of the local timestamp (ms); `null`: no bound. Default 24 h. */
  maxFutureSkewMs?: number | null
  /** Most (sysid, compid, link id) streams remembered; new streams beyond it are refused. Default 256. */
  maxStreams?: number
  /** Timestamp source; or give `timestampFile` to make one that persists. */
  clock?: SigningClock
  /** File that keeps the local timestamp across restarts (see {@link SigningClockOptions.file}). */
  timestampFile?: string
}

/** The fields of a SETUP_SIGNING message. */
export interface SetupSigningFields {
  target_system: number
  target_component: number
  secret_key: ArrayLike<number>
  initial_timestamp: bigint | number
}

function checkKey(key: unknown): Uint8Array {
  if (!(key instanceof Uint8Array)) throw invalidArgType('key', 'a Uint8Array of 32 bytes', key)
  if (key.length !== 32) throw outOfRange('key.length', '32', key.length)
  return Uint8Array.from(key)
}

/**
 * Signing state of one MAVLink system: key, outgoing link id, the local
 * timestamp and the replay table of incoming streams. Give it to a
 * {@link MavlinkEncoder} to sign and to a {@link MavlinkParser} to verify.
 * @example
 * const signing = new MavlinkSigning({ key, linkId: 1, timestampFile: '/var/lib/onbus/mavlink.ts' })
 * const parser = new MavlinkParser({ signing })
 * const encoder = new MavlinkEncoder({ sysid: 1, compid: 191, signing })
 */
export class MavlinkSigning {
  /** Outgoing link id. */
  linkId: number
  /**
   * @internal Changes (to a value no key had before, in any MavlinkSigning)
   * whenever the key changes: a native verifier holding a copy of the key
   * knows when to refresh it.
   */
  keyGeneration = 0
  readonly requireSigned: boolean
  readonly clock: SigningClock
  private key: Uint8Array
  private on: boolean
  private readonly allow: (msgid: number, sysid: number, compid: number) => boolean
  private readonly futureUnits: number
  private readonly maxStreams: number
  private readonly streams = new Map<number, number>()
  private keyListeners: (() => void)[] = []
  // key (32) + largest signed frame up to the signature (10 + 255 + 2 + 7)
  private readonly scratch = new Uint8Array(32 + 274)

  constructor(options: MavlinkSigningOptions) {
    this.key = checkKey(options.key)
    this.on = this.key.some((b) => b !== 0)
    this.scratch.set(this.key, 0)
    this.keyGeneration = ++keyGenerations
    const linkId = options.linkId ?? 0
    if (!Number.isInteger(linkId) || linkId < 0 || linkId > 255) throw outOfRange('options.linkId', 'an integer from 0 to 255', linkId)
    this.linkId = linkId
    this.requireSigned = options.requireSigned ?? true
    const allow = options.allowUnsigned ?? [RADIO_STATUS_ID]
    if (typeof allow === 'function') this.allow = allow
    else {
      const ids = new Set(allow)
      this.allow = (msgid) => ids.has(msgid)
    }
    const skew = options.maxFutureSkewMs === undefined ? 86_400_000 : options.maxFutureSkewMs
    this.futureUnits = skew === null ? Infinity : skew * UNITS_PER_MS
    this.maxStreams = options.maxStreams ?? 256
    if (options.clock && options.timestampFile) throw invalidArgValue('options', 'clock and timestampFile', 'give one of them')
    this.clock = options.clock ?? new SigningClock(options.timestampFile !== undefined ? { file: options.timestampFile } : {})
  }

  /** Whether a key is set (an all-zero key turns signing off). */
  get enabled(): boolean {
    return this.on
  }

  /** Replaces the secret key; the replay table is kept (streams are keyed by sender, not key). */
  setKey(key: Uint8Array): void {
    this.key = checkKey(key)
    this.on = this.key.some((b) => b !== 0)
    this.scratch.set(this.key, 0)
    this.keyGeneration = ++keyGenerations
    for (const l of this.keyListeners) l()
  }

  /**
   * @internal Calls `listener` after each key change (a native verifier
   * takes the new key at once). Returns the unsubscribe function.
   */
  onKeyChange(listener: () => void): () => void {
    this.keyListeners = [...this.keyListeners, listener]
    return () => {
      this.keyListeners = this.keyListeners.filter((l) => l !== listener)
    }
  }

  /** @internal The current key (not a copy: do not modify). */
  keyBytes(): Uint8Array {
    return this.key
  }

  /**
   * Applies a received SETUP_SIGNING: new key, and the local timestamp raised
   * to its initial timestamp. The specification has it accepted only over a
   * secure (physically connected) link: that decision is the caller's.
   */
  applySetup(msg: Pick<SetupSigningFields, 'secret_key' | 'initial_timestamp'>): void {
    this.setKey(Uint8Array.from(msg.secret_key))
    this.clock.observe(Number(msg.initial_timestamp))
  }

  /**
   * The SETUP_SIGNING fields that hand this key and the current timestamp to
   * another system (send them over a secure link only).
   * @example
   * port.write(encoder.encode(SetupSigning, signing.setupFields(1, 1)))
   */
  setupFields(targetSystem: number, targetComponent: number): SetupSigningFields {
    return { target_system: targetSystem, target_component: targetComponent, secret_key: Uint8Array.from(this.key), initial_timestamp: BigInt(this.clock.now()) }
  }

  /** Number of incoming streams remembered. */
  get streamCount(): number {
    return this.streams.size
  }

  /** Last accepted timestamp of a stream, if seen. */
  streamTimestamp(sysid: number, compid: number, linkId: number): number | undefined {
    return this.streams.get(sysid | (compid << 8) | (linkId << 16))
  }

  /** @internal Whether an unsigned frame may pass (signing on and required). */
  unsignedAllowed(msgid: number, sysid: number, compid: number): boolean {
    return !this.on || !this.requireSigned || this.allow(msgid, sysid, compid)
  }

  /**
   * @internal Computes the 6 signature bytes for `frame[start..end)` (header
   * through timestamp) into `out[outOff..outOff+6)`.
   */
  sign(frame: Uint8Array, start: number, end: number, out: Uint8Array, outOff: number): void {
    const digest = this.digest(frame, start, end)
    for (let k = 0; k < 6; k++) out[outOff + k] = digest[k]
  }

  /**
   * @internal Checks a signed frame: `start` is its first byte, `sigOff` the
   * offset of its link id byte. Returns why it is refused, or null (and then
   * records the stream's timestamp).
   */
  verify(data: Uint8Array, start: number, sigOff: number, sysid: number, compid: number): SigningRejectReason | null {
    if (!this.signatureMatches(data, start, sigOff)) return 'bad_signature'
    return this.acceptTimestamp(data, sigOff, sysid, compid)
  }

  /** @internal Whether the signature of the signed frame at `start` (link id at `sigOff`) matches the key. */
  signatureMatches(data: Uint8Array, start: number, sigOff: number): boolean {
    const digest = this.digest(data, start, sigOff + 7)
    for (let k = 0; k < 6; k++) if (digest[k] !== data[sigOff + 7 + k]) return false
    return true
  }

  /**
   * @internal The checks of {@link verify} after the signature's (done
   * elsewhere, e.g. natively): timestamp against the stream's last and the
   * local one; records the stream's timestamp when accepted.
   */
  acceptTimestamp(data: Uint8Array, sigOff: number, sysid: number, compid: number): SigningRejectReason | null {
    const linkId = data[sigOff]
    const ts = readTimestamp(data, sigOff + 1)
    const stream = sysid | (compid << 8) | (linkId << 16)
    const last = this.streams.get(stream)
    // the local timestamp (a clock read) only when a check needs it: a frame
    // of a known stream not ahead of clock.floor() (<= now()) by the future
    // bound passes that check whatever now() is
    let local = -1
    if (last !== undefined) {
      if (ts <= last) return 'replay'
    } else {
      local = this.clock.now()
      if (ts + NEW_STREAM_WINDOW < local) return 'stale_timestamp'
    }
    if (ts > this.clock.floor() + this.futureUnits) {
      if (local < 0) local = this.clock.now()
      if (ts > local + this.futureUnits) return 'future_timestamp'
    }
    if (last === undefined && this.streams.size >= this.maxStreams) return 'stream_limit'
    this.streams.set(stream, ts)
    this.clock.observe(ts)
    return null
  }

  private digest(data: Uint8Array, start: number, end: number): Uint8Array {
    const n = end - start
    this.scratch.set(data.subarray(start, end), 32)
    return sha256(this.scratch.subarray(0, 32 + n))
  }
}

// One-shot crypto.hash (Node >= 20.12) is cheaper than a Hash object; the
// armv7 test image runs an older Node 20, hence the fallback.
const oneShot = (crypto as { hash?: (alg: string, data: Uint8Array, enc: 'buffer') => Uint8Array }).hash
const sha256: (data: Uint8Array) => Uint8Array = oneShot ? (data) => oneShot('sha256', data, 'buffer') : (data) => crypto.createHash('sha256').update(data).digest()

/** Reads a 48-bit little-endian timestamp. */
export function readTimestamp(b: Uint8Array, o: number): number {
  return b[o] + b[o + 1] * 2 ** 8 + b[o + 2] * 2 ** 16 + b[o + 3] * 2 ** 24 + b[o + 4] * 2 ** 32 + b[o + 5] * 2 ** 40
}

/** Writes a 48-bit little-endian timestamp. */
export function writeTimestamp(b: Uint8Array, o: number, t: number): void {
  let v = t
  for (let k = 0; k < 6; k++) {
    b[o + k] = v % 256
    v = Math.floor(v / 256)
  }
}
