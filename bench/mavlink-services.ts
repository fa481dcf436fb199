/**
 * MAVLink microservices benchmark.
 *
 *   node dist/bench/mavlink-services.js [--frames 200000] [--commands 2000]
 *
 * 1. Receive-path cost of the services: a telemetry mix pushed through a JS
 *    port with heartbeat, command, parameter, timesync and mission clients
 *    subscribed, against the same port with no subscriber (baseline).
 * 2. Command round trip (COMMAND_LONG → COMMAND_ACK, signed both ways) to the
 *    simulated autopilot over UDP loopback, against a raw UDP echo of a
 *    same-sized datagram between the same kind of links (baseline).
 *
 * Prints one JSON line per figure: { name, value, unit, baseline, ratio, baselineName }.
 */
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { createUdpLink } from '../lib/links/udp/link.js'
import {
  Attitude,
  BatteryStatus,
  CommandClient,
  GlobalPositionInt,
  Heartbeat,
  HeartbeatService,
  JsPortBase,
  MAV_CMD,
  MavlinkEncoder,
  MavlinkSigning,
  MissionClient,
  ParamClient,
  SysStatus,
  TimesyncService,
  UdpMavlinkPort,
} from '../lib/mavlink/index.js'
import { SimAutopilot } from '../lib/sim/autopilot.js'

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}
const FRAMES = arg('--frames', 200_000)
const COMMANDS = arg('--commands', 2000)
const round = (x: number) => Math.round(x * 1000) / 1000

function line(name: string, value: number, unit: string, baseline: number | null, baselineName?: string): void {
  const row: Record<string, unknown> = { name, value: round(value), unit, baseline: baseline === null ? null : round(baseline), ratio: baseline ? round(value / baseline) : null }
  if (baselineName) row.baselineName = baselineName
  process.stdout.write(JSON.stringify(row) + '\n')
}

class FeedPort extends JsPortBase {
  constructor() {
    super({}, true)
  }
  send(): boolean {
    return true
  }
  feed(b: Uint8Array): void {
    this.ingest(b, 0n)
  }
}

function telemetry(): Uint8Array[] {
  const enc = new MavlinkEncoder({ sysid: 1, compid: 1 })
  const out: Uint8Array[] = []
  for (let i = 0; i < 100; i++) {
    for (let k = 0; k < 5; k++) out.push(enc.encode(Attitude, { time_boot_ms: i * 20 + k, roll: 0.1, pitch: 0.2, yaw: 0.3, rollspeed: 0, pitchspeed: 0, yawspeed: 0 }))
    out.push(enc.encode(GlobalPositionInt, { time_boot_ms: i * 100, lat: 473977420, lon: 85455940, alt: 500000, relative_alt: 10000, vx: 1, vy: 2, vz: 0, hdg: 9000 }))
    if (i % 10 === 0) {
      out.push(enc.encode(Heartbeat, { type: 2, autopilot: 12, base_mode: 1, custom_mode: 0, system_status: 4 }))
      out.push(enc.encode(SysStatus, { onboard_control_sensors_present: 1, onboard_control_sensors_enabled: 1, onboard_control_sensors_health: 1, load: 1, voltage_battery: 16000, current_battery: 100, battery_remaining: 90, drop_rate_comm: 0, errors_comm: 0, errors_count1: 0, errors_count2: 0, errors_count3: 0, errors_count4: 0 }))
      out.push(enc.encode(BatteryStatus, { id: 0, battery_function: 1, type: 1, temperature: 2500, voltages: [4000, 4000, 4000, 4000], current_battery: 100, current_consumed: 10, energy_consumed: -1, battery_remaining: 90 }))
    }
  }
  return out
}

/** ns per frame of one run. */
function receiveCost(withServices: boolean, frames: Uint8Array[]): number {
  const port = new FeedPort()
  const closers: { close(): void }[] = []
  if (withServices) {
    const enc = new MavlinkEncoder({ sysid: 255, compid: 190 })
    const target = { system: 1, component: 1 }
    closers.push(
      new HeartbeatService(port, enc, { rateHz: 0 }),
      new CommandClient(port, enc),
      new ParamClient(port, enc, { target }),
      new TimesyncService(port, enc, { target, rateHz: 0 }),
      new MissionClient(port, enc, { target }),
    )
  }
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < FRAMES; i++) port.feed(frames[i % frames.length])
  const ns = Number(process.hrtime.bigint() - t0) / FRAMES
  for (const c of closers) c.close()
  return ns
}

function percentile(s: number[], p: number): number {
  const a = [...s].sort((x, y) => x - y)
  return a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))]
}

async function commandRoundTrip(): Promise<{ p50: number; p99: number }> {
  const key = randomBytes(32)
  const simLink = createUdpLink({ address: '127.0.0.1', port: 0 })
  const simSigning = new MavlinkSigning({ key })
  const sim = new SimAutopilot(new UdpMavlinkPort(simLink, { signing: simSigning }), { signing: simSigning, attitudeHz: 0, positionHz: 0, statusHz: 0, timesyncRequestHz: 0, heartbeatHz: 0 })
  const link = createUdpLink({ address: '127.0.0.1', port: 0 })
  const signing = new MavlinkSigning({ key })
  const port = new UdpMavlinkPort(link, { signing, remote: { address: '127.0.0.1', port: simLink.address().port } })
  const cmd = new CommandClient(port, new MavlinkEncoder({ sysid: 255, compid: 190, signing }))
  const samples: number[] = []
  for (let i = 0; i < COMMANDS; i++) {
    const t0 = process.hrtime.bigint()
    await cmd.long({ system: 1, component: 1 }, MAV_CMD.MAV_CMD_COMPONENT_ARM_DISARM, [i % 2])
    samples.push(Number(process.hrtime.bigint() - t0) / 1000)
  }
  cmd.close()
  sim.close()
  link.close()
  simLink.close()
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) }
}

async function udpEcho(size: number): Promise<{ p50: number; p99: number }> {
  const a = createUdpLink({ address: '127.0.0.1', port: 0 })
  const b = createUdpLink({ address: '127.0.0.1', port: 0 })
  b.on('message', (d: Buffer, info: { address: string; port: number }) => b.send(d, info.port, info.address))
  const payload = new Uint8Array(size)
  const samples: number[] = []
  for (let i = 0; i < COMMANDS; i++) {
    const t0 = process.hrtime.bigint()
    a.send(payload, b.address().port, '127.0.0.1')
    await once(a, 'message')
    samples.push(Number(process.hrtime.bigint() - t0) / 1000)
  }
  a.close()
  b.close()
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) }
}

async function main(): Promise<void> {
  const frames = telemetry()
  // warm both paths up, then alternate runs (a shared machine drifts) and take medians
  receiveCost(true, frames)
  receiveCost(false, frames)
  const bareRuns: number[] = []
  const fullRuns: number[] = []
  for (let r = 0; r < 5; r++) {
    bareRuns.push(receiveCost(false, frames))
    fullRuns.push(receiveCost(true, frames))
  }
  const bare = percentile(bareRuns, 50)
  const full = percentile(fullRuns, 50)
  line('mavlink-services.receive.bare_port', bare, 'ns/frame', null)
  line('mavlink-services.receive.all_services', full, 'ns/frame', bare, 'JS port without services')
  const echo = await udpEcho(33 + 12 + 13) // COMMAND_LONG-sized signed frame
  const rt = await commandRoundTrip()
  line('mavlink-services.command_rtt.p50', rt.p50, 'us', echo.p50, 'raw UDP echo')
  line('mavlink-services.command_rtt.p99', rt.p99, 'us', echo.p99, 'raw UDP echo')
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
