// TIMESYNC: the estimator against synthetic exchanges with a known clock
// (tight bounds: the data are generated), and against the simulated
// autopilot's drifting boot clock over a port (generous bounds: real timing).
import { describe, it, expect, afterEach } from 'vitest'
import { once } from 'node:events'
import { Attitude, MavlinkEncoder, TimesyncService, createMemoryPortPair, seededRandom } from '../lib/mavlink/index.js'
import { SimAutopilot } from '../lib/sim/autopilot.js'
import { skipUnderEmulator } from './helpers/emulator.js'

const closers: (() => void)[] = []
afterEach(() => {
  for (const c of closers.splice(0).reverse()) c()
})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('TIMESYNC estimator (synthetic exchanges)', () => {
  it('finds offset and drift through jittery, asymmetric round trips by keeping the low-RTT samples', () => {
    const [port] = createMemoryPortPair()
    closers.push(() => port.close())
    const ts = new TimesyncService(port, new MavlinkEncoder({ sysid: 255, compid: 190 }), { rateHz: 0, window: 64 })
    closers.push(() => ts.close())
    const rnd = seededRandom(99)
    const L0 = 1_700_000_000_000_000_000n
    const R0 = 123_456_789_000n
    const drift = 350e-6
    const remoteAt = (local: bigint) => R0 + BigInt(Math.round(Number(local - L0) * (1 + drift)))
    let t = L0
    for (let i = 0; i < 200; i++) {
      t += 100_000_000n // 10 Hz
      // round trips 0.2-30 ms, the peer's reading anywhere inside them
      const rtt = 200_000 + Math.floor(rnd() * rnd() * 30_000_000)
      const at = t + BigInt(Math.floor(rnd() * rtt))
      ts.addSample(t, t + BigInt(rtt), remoteAt(at))
    }
    const e = ts.estimate()
    expect(e.state).toBe('converged')
    expect(e.driftPpm).toBeGreaterThan(350 - 25)
    expect(e.driftPpm).toBeLessThan(350 + 25)
    const probe = t + 50_000_000n
    const err = Number(ts.toLocal(remoteAt(probe)) - probe)
    expect(Math.abs(err)).toBeLessThan(300_000) // 0.3 ms, with round trips up to 30 ms
    expect(Number(ts.toRemote(probe) - remoteAt(probe))).toBeLessThan(300_000)
  })

  it('restarts its window when the peer clock jumps (a reboot), and re-converges', () => {
    const [port] = createMemoryPortPair()
    closers.push(() => port.close())
    const ts = new TimesyncService(port, new MavlinkEncoder({ sysid: 255, compid: 190 }), { rateHz: 0, minSamples: 5 })
    closers.push(() => ts.close())
    const resets: string[] = []
    ts.on('reset', (why) => resets.push(why))
    let t = 10_000_000_000n
    let offset = 5_000_000_000n
    for (let i = 0; i < 40; i++) {
      t += 100_000_000n
      if (i === 20) offset = -t + 1_000_000n // rebooted: its clock restarts near zero
      ts.addSample(t, t + 1_000_000n, t + 500_000n + offset)
    }
    expect(resets.length).toBe(1)
    expect(ts.state).toBe('converged')
    expect(Math.abs(Number(ts.toLocal(t + 500_000n + offset) - (t + 500_000n)))).toBeLessThan(10_000)
  })

  it('throws ERR_MAVLINK_TIMESYNC_NOT_READY before any sample', () => {
    const [port] = createMemoryPortPair()
    closers.push(() => port.close())
    const ts = new TimesyncService(port, new MavlinkEncoder({ sysid: 255, compid: 190 }), { rateHz: 0 })
    closers.push(() => ts.close())
    expect(ts.state).toBe('idle')
    expect(() => ts.toLocal(0n)).toThrow(expect.objectContaining({ code: 'ERR_MAVLINK_TIMESYNC_NOT_READY' }))
  })
})

describe.skipIf(skipUnderEmulator('speed'))('TIMESYNC against the simulated autopilot', () => {
  it('estimates the sim boot clock (offset 5 s, drift +1500 ppm) and maps its time_boot_ms onto our clock', async () => {
    const [gcs, vehicle] = createMemoryPortPair()
    closers.push(() => {
      gcs.close()
      vehicle.close()
    })
    const sim = new SimAutopilot(vehicle, { attitudeHz: 20, positionHz: 0, statusHz: 0, timesyncRequestHz: 5, clockStartNs: 5e9, clockDriftPpm: 1500 })
    closers.push(() => sim.close())
    const ts = new TimesyncService(gcs, new MavlinkEncoder({ sysid: 255, compid: 190 }), { target: { system: 1, component: 1 }, rateHz: 20, window: 100, driftAfterMs: 1500 })
    closers.push(() => ts.close())
    await once(ts, 'converged')
    await sleep(4000)
    const e = ts.estimate()
    expect(e.state).toBe('converged')
    // truth: the host time of a boot-clock reading, from the sim's own definition
    const boot = sim.bootTimeNs()
    const errNs = Number(ts.toLocal(boot) - sim.truthToHost(boot))
    console.log(`timesync vs truth: error ${(errNs / 1e3).toFixed(0)} µs, drift ${e.driftPpm.toFixed(0)} ppm (truth 1500), min RTT ${(e.minRttNs / 1e3).toFixed(0)} µs`)
    expect(Math.abs(errNs)).toBeLessThan(5_000_000) // 5 ms
    expect(e.driftPpm).toBeGreaterThan(1500 - 500)
    expect(e.driftPpm).toBeLessThan(1500 + 500)
    // an ATTITUDE's time_boot_ms lands just before its receive time on our clock
    const deltas: number[] = []
    const off = gcs.onFrame((f, rx) => {
      const att = f.as(Attitude)
      if (att) deltas.push(Number(rx - ts.toLocalMs(att.time_boot_ms)) / 1e6)
    })
    await sleep(500)
    off()
    expect(deltas.length).toBeGreaterThan(3)
    const median = deltas.sort((a, b) => a - b)[deltas.length >> 1]
    expect(median).toBeGreaterThan(-5) // ms: not after it was received (1 ms truncation + estimate error)
    expect(median).toBeLessThan(50)
    // both directions: the sim's own TIMESYNC requests were answered by the service
    expect(ts.stats.answered).toBeGreaterThan(0)
    expect(sim.stats.timesyncAnswersReceived).toBeGreaterThan(0)
  })
})
