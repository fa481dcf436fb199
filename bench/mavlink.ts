/**
 * MAVLink parse-and-verify rate: onbus native vs onbus JavaScript vs
 * node-mavlink (npm), same frames, same run.
 *
 *   node dist/bench/mavlink.js [--quick] [--runs 5] [--frames 100000]
 *
 * The input is a realistic telemetry mix an autopilot streams (ATTITUDE,
 * GLOBAL_POSITION_INT, GPS_RAW_INT, VFR_HUD, SYS_STATUS, HEARTBEAT, RAW_IMU,
 * SCALED_PRESSURE, SERVO_OUTPUT_RAW, RC_CHANNELS, LOCAL_POSITION_NED,
 * BATTERY_STATUS, SYSTEM_TIME) with varied field values, MAVLink 2.
 * "Parse and verify" = find every frame, check its CRC with CRC_EXTRA, and
 * hand JavaScript a frame object with its header (msgid, sysid, compid, seq)
 * and payload view; no payload decoding (onbus decodes lazily, node-mavlink's
 * parser does not decode either). The signed variant also verifies each
 * frame's SHA-256 signature (onbus: MavlinkSigning incl. replay check;
 * node-mavlink: `packet.signature.matches(key)`).
 *
 * - native: frames as UDP delivers them (one frame per datagram, spans in a
 *   receive buffer), one `parseBatch` call per 1024 datagrams as MavlinkLink
 *   does per receive batch, then per frame the same work MavlinkLink does
 *   (header fields into the reused MavlinkFrame, the listener called).
 * - js: lib/mavlink/parser.ts, the whole buffer pushed in 64 KiB chunks.
 * - node-mavlink: MavLinkPacketSplitter → MavLinkPacketParser, same chunks.
 *
 * Each case: one warm-up, then `--runs` runs interleaved, medians quoted.
 * Prints JSON lines { name, value, unit, baseline, baselineName, ratio }.
 */
import { once } from 'node:events'
import * as nm from 'node-mavlink'
import {
  Attitude,
  BatteryStatus,
  GlobalPositionInt,
  GpsRawInt,
  Heartbeat,
  LocalPositionNed,
  MavlinkEncoder,
  MavlinkFrame,
  MavlinkParser,
  MavlinkSigning,
  RawImu,
  RcChannels,
  ScaledPressure,
  ServoOutputRaw,
  SigningClock,
  SysStatus,
  SystemTime,
  VfrHud,
} from '../lib/mavlink/index.js'
import type { MessageDef } from '../lib/mavlink/index.js'
import { IFLAG_SIGNED, HEADER_V1, HEADER_V2, STX_V2 } from '../lib/mavlink/frame.js'
import { readTimestamp } from '../lib/mavlink/signing.js'
import { nativeParser, PARSE_DONE_SHIFT, PARSE_OUT_WORDS, REC_SIG_CHECKED, REC_SIG_GOOD } from '../lib/mavlink/native.js'
import { DIALECT } from '../lib/mavlink/generated/common.js'

const argv = process.argv.slice(2)
const arg = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? argv[i + 1] : undefined
}
const QUICK = argv.includes('--quick')
const RUNS = Number(arg('runs') ?? (QUICK ? 1 : 5))
const FRAMES = Number(arg('frames') ?? (QUICK ? 20_000 : 100_000))
const KEY = new Uint8Array(32).map((_, i) => 7 * i + 1)

// telemetry mix: [message, relative rate] (ArduPilot-like stream rates)
const MIX: [MessageDef, number][] = [
  [Attitude.def, 25],
  [GlobalPositionInt.def, 10],
  [GpsRawInt.def, 5],
  [VfrHud.def, 10],
  [SysStatus.def, 2],
  [Heartbeat.def, 1],
  [RawImu.def, 10],
  [ScaledPressure.def, 5],
  [ServoOutputRaw.def, 10],
  [RcChannels.def, 5],
  [LocalPositionNed.def, 10],
  [BatteryStatus.def, 2],
  [SystemTime.def, 2],
]

function valueFor(type: string, k: number): unknown {
  const x = Math.sin(k * 12.9898) * 43758.5453
  const u = x - Math.floor(x)
  switch (type) {
    case 'float':
    case 'double':
      return Math.fround((u - 0.5) * 100)
    case 'int64_t':
    case 'uint64_t':
      return BigInt(Math.floor(u * 1e12))
    case 'char':
      return 'x'
    case 'int8_t':
      return Math.floor(u * 100) - 50
    case 'int16_t':
      return Math.floor(u * 60000) - 30000
    case 'int32_t':
      return Math.floor(u * 2e9) - 1e9
    case 'uint16_t':
      return Math.floor(u * 65535)
    case 'uint32_t':
      return Math.floor(u * 4e9)
    default:
      return Math.floor(u * 255)
  }
}

function frames(signed: boolean): Uint8Array[] {
  const signing = new MavlinkSigning({ key: KEY, clock: new SigningClock() })
  const enc = new MavlinkEncoder({ sysid: 1, compid: 1, signing: signed ? signing : undefined })
  const total = MIX.reduce((s, [, w]) => s + w, 0)
  const out: Uint8Array[] = []
  let k = 0
  while (out.length < FRAMES) {
    for (const [def, w] of MIX) {
      for (let j = 0; j < w && out.length < FRAMES; j++) {
        const data: Record<string, unknown> = {}
        for (const f of def.fields) {
          if (f.arrayLength === 0) data[f.name] = valueFor(f.type, k++)
          else if (f.type === 'char') data[f.name] = 'telemetry'.slice(0, f.arrayLength)
          else data[f.name] = Array.from({ length: f.arrayLength }, () => valueFor(f.type, k++))
        }
        out.push(enc.encode(def, data))
      }
    }
  }
  void total
  return out
}

interface Input {
  all: Uint8Array
  spans: Uint32Array
  n: number
}

function input(list: Uint8Array[]): Input {
  const all = new Uint8Array(Buffer.concat(list))
  const spans = new Uint32Array(list.length * 2)
  let off = 0
  for (let i = 0; i < list.length; i++) {
    spans[2 * i] = off
    spans[2 * i + 1] = list[i].length
    off += list[i].length
  }
  return { all, spans, n: list.length }
}

function verifier(): MavlinkSigning {
  // a fresh replay table per run (the same frames are parsed again)
  return new MavlinkSigning({ key: KEY, clock: new SigningClock() })
}

/** onbus native: what MavlinkLink does per UDP batch, without the socket. */
function runNative(inp: Input, signed: boolean): number {
  const parser = nativeParser(DIALECT, true, true)
  const out = new Uint32Array(PARSE_OUT_WORDS * 4096)
  const f = new MavlinkFrame()
  const data = inp.all
  const signing = signed ? verifier() : undefined
  // as MavlinkLink: the native side checks signatures with the key, JS the timestamps
  if (signing !== undefined) parser.setSigningKey(signing.keyBytes())
  let seen = 0
  let sum = 0
  const onFrame = (fr: MavlinkFrame) => {
    seen++
    sum += fr.seq
  }
  const t0 = process.hrtime.bigint()
  for (let first = 0; first < inp.n; ) {
    const count = Math.min(1024, inp.n - first)
    let done = 0
    while (done < count) {
      const r = parser.parseBatch(data, inp.spans, first + done, count - done, out)
      const nf = r % PARSE_DONE_SHIFT
      done += (r - nf) / PARSE_DONE_SHIFT
      for (let k = 0; k < nf; k++) {
        const w = k * PARSE_OUT_WORDS
        const off = out[w + 1]
        const v2 = data[off] === STX_V2
        const incompat = v2 ? data[off + 2] : 0
        const sysid = data[off + (v2 ? 5 : 3)]
        const compid = data[off + (v2 ? 6 : 4)]
        if ((incompat & IFLAG_SIGNED) !== 0) {
          const sigOff = off + (v2 ? HEADER_V2 : HEADER_V1) + data[off + 1] + 2
          f.linkId = data[sigOff]
          f.timestamp = readTimestamp(data, sigOff + 1)
          if (signing !== undefined) {
            const flags = out[w + 5] >>> 24
            const why =
              (flags & REC_SIG_CHECKED) !== 0
                ? (flags & REC_SIG_GOOD) !== 0
                  ? signing.acceptTimestamp(data, sigOff, sysid, compid)
                  : 'bad_signature'
                : signing.verify(data, off, sigOff, sysid, compid)
            if (why !== null) continue
            f.verified = true
          }
        }
        f.version = v2 ? 2 : 1
        f.buffer = data
        f.offset = off
        f.length = out[w + 2]
        f.payloadLength = data[off + 1]
        f.incompatFlags = incompat
        f.seq = data[off + (v2 ? 4 : 2)]
        f.sysid = sysid
        f.compid = compid
        f.msgid = out[w + 3]
        f.def = DIALECT.messages.get(f.msgid)
        f.reset()
        onFrame(f)
      }
    }
    first += count
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  if (seen !== inp.n) throw new Error(`native: ${seen} of ${inp.n} frames (${sum})`)
  return seen / s
}

function runJs(inp: Input, signed: boolean): number {
  const parser = new MavlinkParser({ signing: signed ? verifier() : undefined })
  let seen = 0
  let sum = 0
  const cb = (f: MavlinkFrame) => {
    seen++
    sum += f.seq
  }
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < inp.all.length; i += 65536) parser.push(inp.all.subarray(i, i + 65536), cb)
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  if (seen !== inp.n) throw new Error(`js: ${seen} of ${inp.n} frames (${sum})`)
  return seen / s
}

async function runNm(inp: Input, signed: boolean): Promise<number> {
  const key = Buffer.from(KEY)
  const splitter = new nm.MavLinkPacketSplitter()
  const parser = splitter.pipe(new nm.MavLinkPacketParser())
  let seen = 0
  let bad = 0
  parser.on('data', (p: nm.MavLinkPacket) => {
    if (signed && !(p.signature && p.signature.matches(key))) bad++
    else seen++
  })
  const buf = Buffer.from(inp.all.buffer, inp.all.byteOffset, inp.all.length)
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < buf.length; i += 65536) splitter.write(buf.subarray(i, i + 65536))
  splitter.end()
  await once(parser, 'end')
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  if (seen !== inp.n) throw new Error(`node-mavlink: ${seen} of ${inp.n} frames (${bad} bad signatures)`)
  return seen / s
}

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]
const round = (x: number): number => (Math.abs(x) >= 100 ? Math.round(x) : Math.round(x * 1000) / 1000)

function line(name: string, value: number, runs: number[], baseline: number, baselineName: string): void {
  console.log(JSON.stringify({ name, value: round(value), unit: 'frames/s', baseline: round(baseline), baselineName, ratio: round(value / baseline), runs: runs.map(round) }))
}

for (const signed of [false, true]) {
  const inp = input(frames(signed))
  const tag = signed ? 'signed' : 'unsigned'
  process.stderr.write(`mavlink: ${inp.n} frames (${tag}), ${inp.all.length} bytes, ${RUNS} runs\n`)
  // warm-up
  runNative(inp, signed)
  runJs(inp, signed)
  await runNm(inp, signed)
  const nat: number[] = []
  const js: number[] = []
  const nmr: number[] = []
  for (let r = 0; r < RUNS; r++) {
    nat.push(runNative(inp, signed))
    js.push(runJs(inp, signed))
    nmr.push(await runNm(inp, signed))
  }
  const base = median(nmr)
  line(`mavlink.parse.${tag}.native`, median(nat), nat, base, 'node-mavlink')
  line(`mavlink.parse.${tag}.js`, median(js), js, base, 'node-mavlink')
  console.log(JSON.stringify({ name: `mavlink.parse.${tag}.node-mavlink`, value: round(base), unit: 'frames/s', runs: nmr.map(round) }))
}
