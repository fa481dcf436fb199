import { describe, it, expect } from 'vitest'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Attitude, Heartbeat, MavlinkEncoder, MavlinkParser, MavlinkSigning, RadioStatus, SetupSigning, SigningClock, readTimestamp, signingTimestampFromMs } from '../lib/mavlink/index.js'
import type { MavlinkFrame, RejectReason } from '../lib/mavlink/index.js'

const KEY = new Uint8Array(32).map((_, k) => k * 7 + 1)
const T0 = Date.UTC(2026, 0, 1) // ms; the injected wall clock starts here

/** A wall clock the test moves by hand. */
function manualClock(startMs = T0): { now: () => number; set: (ms: number) => void } {
  let t = startMs
  return { now: () => t, set: (ms) => (t = ms) }
}

function signing(opts: Partial<ConstructorParameters<typeof MavlinkSigning>[0]> = {}, clockMs = manualClock()): MavlinkSigning {
  return new MavlinkSigning({ key: KEY, clock: new SigningClock({ clock: clockMs.now }), ...opts })
}

const att = { time_boot_ms: 1, roll: 0.5, pitch: 0, yaw: 0, rollspeed: 0, pitchspeed: 0, yawspeed: 0 }

function run(parser: MavlinkParser, ...frames: Uint8Array[]): MavlinkFrame[] {
  const out: MavlinkFrame[] = []
  for (const f of frames) parser.push(f, (x) => out.push(x.clone()))
  return out
}

function rejections(p: MavlinkParser): Partial<Record<RejectReason, number>> {
  return Object.fromEntries(Object.entries(p.stats.rejected).filter(([, v]) => v > 0))
}

describe('MAVLink 2 signing', () => {
  it('signature = first 6 bytes of sha256(key + header + payload + crc + link id + timestamp)', () => {
    const clock = manualClock()
    const enc = new MavlinkEncoder({ sysid: 1, compid: 1, signing: signing({ linkId: 3 }, clock) })
    const f = enc.encode(Attitude, att)
    expect(f[2] & 1).toBe(1)
    const n = f.length
    expect(f[n - 13]).toBe(3)
    expect(readTimestamp(f, n - 12)).toBe(signingTimestampFromMs(T0))
    const want = createHash('sha256').update(KEY).update(f.subarray(0, n - 6)).digest().subarray(0, 6)
    expect(Buffer.from(f.subarray(n - 6))).toEqual(want)
    const parser = new MavlinkParser({ signing: signing({}, clock) })
    const [got] = run(parser, f)
    expect(got.signed && got.verified).toBe(true)
    expect(got.linkId).toBe(3)
    expect(parser.stats.signed).toBe(1)
  })

  it('refuses unsigned frames on a link that requires signing, except the configured ones (RADIO_STATUS)', () => {
    const plain = new MavlinkEncoder({ sysid: 1, compid: 1 })
    const v1 = new MavlinkEncoder({ sysid: 1, compid: 1, version: 1 })
    const parser = new MavlinkParser({ signing: signing() })
    const radio = plain.encode(RadioStatus, { rssi: 1, remrssi: 2, txbuf: 3, noise: 4, remnoise: 5, rxerrors: 6, fixed: 7 })
    const got = run(parser, plain.encode(Attitude, att), v1.encode(Attitude, att), radio)
    expect(got.map((f) => f.msgid)).toEqual([RadioStatus.def.id])
    expect(rejections(parser)).toEqual({ unsigned: 2 })
    expect(parser.stats.unsignedAllowed).toBe(1)
    // not required: unsigned frames pass, signed ones are still verified
    const lax = new MavlinkParser({ signing: signing({ requireSigned: false }) })
    expect(run(lax, plain.encode(Attitude, att)).length).toBe(1)
    // custom exceptions
    const custom = new MavlinkParser({ signing: signing({ allowUnsigned: (id, sys) => id === 0 && sys === 1 }) })
    expect(run(custom, plain.encode(Heartbeat, { type: 1, autopilot: 1, base_mode: 0, custom_mode: 0, system_status: 0 }), radio).length).toBe(1)
  })

  it('counts bad signatures, replays, stale and future timestamps and the stream limit separately', () => {
    const clock = manualClock()
    const sender = signing({ linkId: 1 }, clock)
    const enc = new MavlinkEncoder({ sysid: 1, compid: 1, signing: sender })
    const rx = signing({ maxStreams: 2 }, clock)
    const parser = new MavlinkParser({ signing: rx })
    const a = enc.encode(Attitude, att)
    const b = enc.encode(Attitude, att)
    // bad signature: one flipped bit in the signature; and a wrong key
    const forged = a.slice()
    forged[forged.length - 1] ^= 1
    const wrongKey = new MavlinkEncoder({ sysid: 1, compid: 1, signing: new MavlinkSigning({ key: new Uint8Array(32).fill(9), clock: new SigningClock({ clock: clock.now }) }) }).encode(Attitude, att)
    expect(run(parser, forged, wrongKey).length).toBe(0)
    expect(rejections(parser)).toEqual({ bad_signature: 2 })
    // b then a: a is older than b on the same stream; b again is a replay
    expect(run(parser, b, a, b).length).toBe(1)
    expect(rejections(parser)).toEqual({ bad_signature: 2, replay: 2 })
    // another link id is another stream
    sender.linkId = 2
    expect(run(parser, enc.encode(Attitude, att)).length).toBe(1)
    // a new stream more than a minute behind the local timestamp
    const old = manualClock(T0 - 120_000)
    const late = new MavlinkEncoder({ sysid: 2, compid: 1, signing: signing({}, old) })
    expect(run(parser, late.encode(Attitude, att)).length).toBe(0)
    expect(rejections(parser).stale_timestamp).toBe(1)
    // far in the future (two days ahead)
    const ahead = new MavlinkEncoder({ sysid: 3, compid: 1, signing: signing({}, manualClock(T0 + 2 * 86_400_000)) })
    const future = ahead.encode(Attitude, att)
    expect(run(parser, future).length).toBe(0)
    expect(rejections(parser).future_timestamp).toBe(1)
    // with no future bound it is accepted
    expect(run(new MavlinkParser({ signing: signing({ maxFutureSkewMs: null }, clock) }), future).length).toBe(1)
    // a third stream exceeds maxStreams: 2
    const third = new MavlinkEncoder({ sysid: 4, compid: 1, signing: signing({}, clock) })
    expect(run(parser, third.encode(Attitude, att)).length).toBe(0)
    expect(rejections(parser)).toEqual({ bad_signature: 2, replay: 2, stale_timestamp: 1, future_timestamp: 1, stream_limit: 1 })
    expect(rx.streamCount).toBe(2)
    expect(parser.stats.bytesIn).toBe(parser.stats.bytesAccepted + parser.stats.bytesDiscarded)
  })

  it('future bound on a known stream: judged against the local timestamp, whether or not the clock has to be read for it', () => {
    const wall = manualClock()
    const rx = signing({}, wall)
    const parser = new MavlinkParser({ signing: rx })
    const senderClock = manualClock()
    const enc = new MavlinkEncoder({ sysid: 1, compid: 1, signing: signing({}, senderClock) })
    expect(run(parser, enc.encode(Attitude, att)).length).toBe(1) // the stream is known, local timestamp ~T0
    // our wall clock moves 3 days on; the sender's 2.5 days: beyond a day past
    // the last timestamp seen, but within a day of the local one: accepted
    wall.set(T0 + 3 * 86_400_000)
    senderClock.set(T0 + 2.5 * 86_400_000)
    expect(run(parser, enc.encode(Attitude, att)).length).toBe(1)
    // two days ahead of the local timestamp: refused
    senderClock.set(T0 + 5 * 86_400_000)
    expect(run(parser, enc.encode(Attitude, att)).length).toBe(0)
    expect(rejections(parser)).toEqual({ future_timestamp: 1 })
    // the wall clock goes back a week: the local timestamp stays at the newest accepted one
    // (a new sender object for the same stream: the first one's clock has issued T0 + 5 days)
    wall.set(T0 - 7 * 86_400_000)
    const clock2 = manualClock(T0 + 3 * 86_400_000)
    const enc2 = new MavlinkEncoder({ sysid: 1, compid: 1, signing: signing({}, clock2) })
    expect(run(parser, enc2.encode(Attitude, att)).length).toBe(1)
    clock2.set(T0 + 4.6 * 86_400_000)
    expect(run(parser, enc2.encode(Attitude, att)).length).toBe(0)
    expect(rejections(parser)).toEqual({ future_timestamp: 2 })
  })

  it('accepted timestamps raise the local timestamp', () => {
    const clock = manualClock()
    const rx = signing({}, clock)
    const ahead = new MavlinkEncoder({ sysid: 3, compid: 1, signing: signing({}, manualClock(T0 + 3_600_000)) })
    run(new MavlinkParser({ signing: rx }), ahead.encode(Attitude, att))
    expect(rx.clock.now()).toBe(signingTimestampFromMs(T0 + 3_600_000))
    expect(rx.clock.next()).toBe(signingTimestampFromMs(T0 + 3_600_000) + 1)
  })

  it('the local timestamp is monotonic and survives restarts through its file, even with the clock set back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'onbus-sign-'))
    try {
      const file = join(dir, 'ts')
      const wall = manualClock()
      const c1 = new SigningClock({ file, clock: wall.now, reserveMs: 1000 })
      const issued: number[] = []
      for (let k = 0; k < 5; k++) issued.push(c1.next())
      wall.set(T0 + 5000)
      issued.push(c1.next())
      wall.set(T0 - 3_600_000) // clock goes back an hour
      issued.push(c1.next())
      for (let k = 1; k < issued.length; k++) expect(issued[k]).toBeGreaterThan(issued[k - 1])
      // the file holds a reservation at or beyond everything issued
      expect(Number(readFileSync(file, 'utf8'))).toBeGreaterThanOrEqual(issued[issued.length - 1])
      // "crash" without flush, restart with the clock a day behind
      const c2 = new SigningClock({ file, clock: manualClock(T0 - 86_400_000).now })
      expect(c2.next()).toBeGreaterThan(issued[issued.length - 1])
      // a file that does not hold a timestamp is an error, not a silent restart from zero
      writeFileSync(file, 'garbage')
      expect(() => new SigningClock({ file })).toThrow(/signing timestamp/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('SETUP_SIGNING hands over the key and timestamp; an all-zero key turns signing off', () => {
    const clock = manualClock()
    const gcs = signing({}, clock)
    const plain = new MavlinkEncoder({ sysid: 255, compid: 190 })
    const setup = plain.encode(SetupSigning, gcs.setupFields(1, 1))
    const vehicle = new MavlinkSigning({ key: new Uint8Array(32), clock: new SigningClock({ clock: manualClock(T0 - 86_400_000).now }) })
    expect(vehicle.enabled).toBe(false)
    const [f] = run(new MavlinkParser(), setup)
    const msg = f.as(SetupSigning)!
    expect(msg.target_system).toBe(1)
    vehicle.applySetup(msg)
    expect(vehicle.enabled).toBe(true)
    expect(vehicle.clock.now()).toBeGreaterThanOrEqual(Number(msg.initial_timestamp))
    // frames the vehicle signs now verify at the GCS
    const fromVehicle = new MavlinkEncoder({ sysid: 1, compid: 1, signing: vehicle }).encode(Attitude, att)
    expect(run(new MavlinkParser({ signing: gcs }), fromVehicle)[0].verified).toBe(true)
    vehicle.applySetup({ secret_key: new Uint8Array(32), initial_timestamp: 0n })
    expect(vehicle.enabled).toBe(false)
    expect(new MavlinkEncoder({ sysid: 1, compid: 1, signing: vehicle }).encode(Attitude, att)[2]).toBe(0)
  })

  it('without signing configured, signed frames pass unverified', () => {
    const enc = new MavlinkEncoder({ sysid: 1, compid: 1, signing: signing() })
    const [f] = run(new MavlinkParser(), enc.encode(Attitude, att))
    expect(f.signed).toBe(true)
    expect(f.verified).toBe(false)
  })

  it('validates its arguments', () => {
    expect(() => new MavlinkSigning({ key: new Uint8Array(31) })).toThrow(RangeError)
    expect(() => new MavlinkSigning({ key: 'secret' as unknown as Uint8Array })).toThrow(TypeError)
    expect(() => new MavlinkSigning({ key: KEY, linkId: 256 })).toThrow(RangeError)
    expect(() => new MavlinkEncoder({ sysid: 1, compid: 1, version: 1, signing: signing() })).toThrow(RangeError)
  })
})
