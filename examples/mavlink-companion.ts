/**
 * A companion computer talking to an autopilot with the MAVLink
 * microservices: heartbeat, TIMESYNC (telemetry on our clock), commands
 * (arm, takeoff with progress), parameters and a mission, all signed.
 *
 *   node dist/examples/mavlink-companion.js --sim                      # starts a simulated autopilot in-process
 *   node dist/examples/mavlink-companion.js --udp 127.0.0.1:14550 --key <hex>   # e.g. against tools/sim-autopilot
 *
 * Options: --seconds N (telemetry printout, default 5).
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createUdpLink } from '../lib/index.js'
import {
  Attitude,
  BatteryStatus,
  CommandClient,
  GlobalPositionInt,
  HeartbeatService,
  MAV_CMD,
  MAV_FRAME,
  MavlinkEncoder,
  MavlinkSigning,
  MissionClient,
  ParamClient,
  TimesyncService,
  UdpMavlinkPort,
  detectParamEncoding,
  enumName,
  MAV_AUTOPILOT,
} from '../lib/mavlink/index.js'
import { SimAutopilot } from '../lib/sim/index.js'

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : undefined
}

async function main(): Promise<void> {
  const seconds = Number(arg('--seconds') ?? 5)
  let key: Buffer
  let remote: { address: string; port: number }
  const cleanup: (() => void)[] = []
  if (process.argv.includes('--sim')) {
    // a simulated autopilot on its own loopback socket, with a fresh key
    key = randomBytes(32)
    const simLink = createUdpLink({ address: '127.0.0.1', port: 0 })
    const simSigning = new MavlinkSigning({ key })
    const sim = new SimAutopilot(new UdpMavlinkPort(simLink, { signing: simSigning }), { signing: simSigning, clockDriftPpm: 250, clockStartNs: 42e9, takeoffMs: 1000 })
    remote = { address: '127.0.0.1', port: simLink.address().port }
    cleanup.push(() => sim.close(), () => simLink.close())
  } else {
    const udp = arg('--udp')
    const hex = arg('--key')
    if (!udp || !hex) throw new Error('give --sim, or --udp HOST:PORT and --key HEX')
    const i = udp.lastIndexOf(':')
    remote = { address: udp.slice(0, i), port: Number(udp.slice(i + 1)) }
    key = Buffer.from(hex, 'hex')
  }

  const link = createUdpLink({ address: '127.0.0.1', port: 0 })
  cleanup.push(() => link.close())
  const signing = new MavlinkSigning({ key })
  const port = new UdpMavlinkPort(link, { signing, remote })
  const enc = new MavlinkEncoder({ sysid: 1, compid: 191, signing })
  const vehicle = { system: 1, component: 1 }

  const hb = new HeartbeatService(port, enc, { deadlineMs: 3000 })
  hb.on('connection-lost', (c) => console.log(`connection lost: ${c.sysid}/${c.compid}`))
  const ts = new TimesyncService(port, enc, { target: vehicle, rateHz: 10 })
  const cmd = new CommandClient(port, enc)
  const [c] = await once(hb, 'heartbeat')
  console.log(`vehicle ${c.sysid}/${c.compid}: ${enumName(MAV_AUTOPILOT, c.autopilot) ?? c.autopilot}`)
  if (ts.state !== 'converged') await once(ts, 'converged')

  const encoding = (await detectParamEncoding(port, cmd, vehicle)) ?? 'c_cast'
  const params = new ParamClient(port, enc, { target: vehicle, encoding })
  const all = await params.list()
  console.log(`parameters: ${all.size} (${encoding} encoding)`)

  const missions = new MissionClient(port, enc, { target: vehicle })
  const wp = (lat: number, lon: number) => ({
    frame: MAV_FRAME.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, command: MAV_CMD.MAV_CMD_NAV_WAYPOINT, current: 0, autocontinue: 1,
    param1: 0, param2: 2, param3: 0, param4: NaN, x: Math.round(lat * 1e7), y: Math.round(lon * 1e7), z: 20,
  })
  await missions.upload([wp(47.3977, 8.5456), wp(47.3980, 8.5460), wp(47.3983, 8.5456)])
  console.log(`mission: uploaded and read back ${(await missions.download()).length} items`)

  await cmd.long(vehicle, MAV_CMD.MAV_CMD_COMPONENT_ARM_DISARM, [1])
  console.log('armed')
  await cmd.long(vehicle, MAV_CMD.MAV_CMD_NAV_TAKEOFF, [0, 0, 0, NaN, 0, 0, 10], { onProgress: (p) => console.log(`takeoff ${p} %`) })
  console.log('takeoff complete')

  // telemetry on our clock: age = receive time − the autopilot's timestamp mapped by TIMESYNC
  let att: Attitude | undefined
  let pos: GlobalPositionInt | undefined
  let bat: BatteryStatus | undefined
  const ages: number[] = []
  port.onFrame((f, rx) => {
    const a = f.as(Attitude)
    if (a) {
      att = a
      ages.push(Number(rx - ts.toLocalMs(a.time_boot_ms)) / 1e6)
    }
    pos = f.as(GlobalPositionInt) ?? pos
    bat = f.as(BatteryStatus) ?? bat
  })
  for (let s = 0; s < seconds; s++) {
    await new Promise((r) => setTimeout(r, 1000))
    const e = ts.estimate()
    const age = ages.sort((x, y) => x - y)[ages.length >> 1] ?? NaN
    ages.length = 0
    const deg = (r: number | undefined) => (((r ?? 0) * 180) / Math.PI).toFixed(1)
    console.log(
      `t+${s + 1}s roll ${deg(att?.roll)} pitch ${deg(att?.pitch)} yaw ${deg(att?.yaw)} | ` +
        `${((pos?.lat ?? 0) / 1e7).toFixed(6)},${((pos?.lon ?? 0) / 1e7).toFixed(6)} alt ${((pos?.relative_alt ?? 0) / 1000).toFixed(1)} m | ` +
        `battery ${bat?.battery_remaining ?? '?'} % | clock drift ${e.driftPpm.toFixed(0)} ppm, telemetry age ${age.toFixed(2)} ms`,
    )
  }
  const q = hb.get(1, 1)
  console.log(`link quality ${((q?.linkQuality ?? 0) * 100).toFixed(1)} %, ${port.stats().parser.signed} signed frames verified, ${port.stats().parser.rejected.unsigned} unsigned refused`)
  for (const s of [hb, ts, cmd, params, missions]) s.close()
  for (const f of cleanup.reverse()) f()
}

main().catch((err: Error & { code?: string }) => {
  console.error(`mavlink-companion: ${err.code ?? ''} ${err.message}`)
  process.exit(1)
})
