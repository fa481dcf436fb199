/** `onbus echo <topic>`: prints the messages of a topic, decoded where onbus knows the payload. */
import type { Command } from 'commander'
import type { Codec } from '../../codecs/codec.js'
import type { MessageMeta } from '../../bus/meta.js'
import { MavlinkParser } from '../../mavlink/index.js'
import { videoFrameCodec } from '../../video/receiver.js'
import { parseVlp16Packet } from '../../sim/lidar.js'
import type { StatsSnapshot } from '../../daemon/stats.js'
import { fail, ipcDir, ipcDirOption, joinBus, jsonLine, remoteEndpoints, untilSignal, watchStats } from '../common.js'
import { onbusError } from '../../errors.js'

/** Bytes as they came: a codec that only carries the wire codec's name, so it matches publishers of any codec. */
function passthrough(name: string): Codec<Uint8Array> {
  return { name, encode: (b) => b, decode: (b) => b, byteLength: (b) => b.length }
}

export function hexDump(b: Uint8Array, max: number): string {
  const n = Math.min(b.length, max)
  const lines: string[] = []
  for (let o = 0; o < n; o += 16) {
    const row = b.subarray(o, Math.min(o + 16, n))
    const hex = [...row].map((x) => x.toString(16).padStart(2, '0')).join(' ')
    const asc = [...row].map((x) => (x >= 32 && x < 127 ? String.fromCharCode(x) : '.')).join('')
    lines.push(`  ${o.toString(16).padStart(4, '0')}  ${hex.padEnd(47)}  ${asc}`)
  }
  if (b.length > n) lines.push(`  … ${b.length - n} more bytes`)
  return lines.join('\n')
}

/** An RTP header (RFC 3550), if the bytes look like one. */
function rtpHeader(b: Uint8Array): { pt: number; seq: number; timestamp: number; ssrc: number; marker: boolean; payload: number } | null {
  if (b.length < 12 || b[0] >> 6 !== 2) return null
  const cc = b[0] & 0x0f
  const v = new DataView(b.buffer, b.byteOffset, b.length)
  return { pt: b[1] & 0x7f, marker: (b[1] & 0x80) !== 0, seq: v.getUint16(2), timestamp: v.getUint32(4), ssrc: v.getUint32(8), payload: b.length - 12 - cc * 4 }
}

type Kind = 'mavlink' | 'json' | 'video' | 'vlp16' | 'raw'

function kindOf(codec: string, type: string | null, b: Uint8Array): Kind {
  if (codec === 'json') return 'json'
  if (codec.startsWith('mavlink') || type?.startsWith('mavlink')) return 'mavlink'
  if (type?.startsWith('video') || codec.startsWith('video') || codec === videoFrameCodec.name || codec.startsWith('rtp')) return 'video'
  if (type === 'velodyne/vlp16' || (b.length === 1206 && b[0] === 0xff && b[1] === 0xee)) return 'vlp16'
  if ((b[0] === 0xfd || b[0] === 0xfe) && b.length >= 8) return 'mavlink'
  return 'raw'
}

export function register(program: Command): void {
  ipcDirOption(
    program
      .command('echo')
      .argument('<topic>', 'topic name')
      .description('print the messages of a topic: MAVLink decoded to fields, frame summaries for video, hex for raw bytes')
      .option('--json', 'one JSON object per message')
      .option('-n, --count <n>', 'stop after this many messages', (v) => Number(v))
      .option('--bytes <n>', 'hex-dump at most this many bytes of a raw message', (v) => Number(v), 64)
      .option('--timeout <ms>', 'give up when the topic is not found within this long', (v) => Number(v), 5000),
  ).action(async (name: string, o: { json?: boolean; count?: number; bytes: number; timeout: number; ipcDir?: string }) => {
    const j = joinBus(ipcDir(o), `onbus-echo-${process.pid}`)
    const stop = untilSignal()
    try {
      // What the topic carries: the daemon's stats say, else a publisher's announcement.
      let snap: StatsSnapshot | null = null
      const ac = new AbortController()
      void watchStats(j.bus, j.ipc.dir, (s) => (snap = s), { timeoutMs: o.timeout, signal: ac.signal }).catch(() => {})
      const t0 = Date.now()
      let codec: string | null = null
      let type: string | null = null
      while (codec === null && Date.now() - t0 < o.timeout && !stop.signal.aborted) {
        const s = snap as StatsSnapshot | null
        const t = s?.topics.find((x) => x.name === name)
        if (t) {
          codec = t.codec
          type = t.type
          break
        }
        const e = remoteEndpoints(j.ipc).find((x) => x.topic === name && x.kind === 'publisher')
        if (e) codec = e.codec
        else await new Promise((r) => setTimeout(r, 100))
      }
      ac.abort()
      if (stop.signal.aborted) return
      if (codec === null) throw onbusError('ERR_ONBUS_NO_TOPIC', `No topic '${name}' on the bus in ${j.ipc.dir} (see \`onbus topics\`)`)
      const topic = j.bus.topic(name, { qos: { reliability: 'best-effort', depth: 256, overflow: 'drop-oldest', deadlineMs: Infinity }, codec: passthrough(codec) })
      const parser = new MavlinkParser({ datagram: true })
      const dec = new TextDecoder()
      let n = 0
      await new Promise<void>((resolve) => {
        const done = () => {
          sub.close()
          resolve()
        }
        stop.signal.addEventListener('abort', done, { once: true })
        const sub = topic.subscribe(
          (b: Uint8Array, meta: MessageMeta) => {
            const head = { topic: name, seq: meta.seq, source: meta.source, size: b.length, rxTime: meta.rxTime, publishTime: meta.publishTime }
            const kind = kindOf(codec!, type, b)
            const text = `${name} #${meta.seq} from ${meta.source} ${b.length} B${meta.rxTime !== undefined ? ` rx ${new Date(Number(meta.rxTime / 1_000_000n)).toISOString()}` : ''}`
            if (kind === 'json') {
              const v: unknown = JSON.parse(dec.decode(b))
              if (o.json) jsonLine({ ...head, data: v })
              else process.stdout.write(`${text}\n  ${JSON.stringify(v)}\n`)
            } else if (kind === 'mavlink') {
              const frames: Record<string, unknown>[] = []
              parser.push(b, (f) => frames.push({ msgid: f.msgid, name: f.name ?? null, sysid: f.sysid, compid: f.compid, seq: f.seq, signed: f.signed, fields: f.message?.toJSON() ?? null }))
              if (o.json) jsonLine({ ...head, mavlink: frames })
              else
                process.stdout.write(
                  `${text}\n${frames.map((f) => `  ${String(f.name ?? `#${String(f.msgid)}`)} sys ${String(f.sysid)} comp ${String(f.compid)} seq ${String(f.seq)}${f.signed ? ' signed' : ''} ${JSON.stringify(f.fields)}`).join('\n') || '  (no complete MAVLink frame)'}\n`,
                )
            } else if (kind === 'video' && codec === videoFrameCodec.name) {
              // Whole frames from an rtp-camera link: the metadata, not the bytes.
              const f = videoFrameCodec.decode(b)
              const summary = { codec: f.codec, keyframe: f.keyframe, complete: f.complete, bytes: f.data.length, packets: f.packets, rtpTimestamp: f.rtpTimestamp, ssrc: f.ssrc, seq: [f.firstSeq, f.lastSeq], missing: f.missing, parameterSets: Object.keys(f.parameterSets) }
              if (o.json) jsonLine({ ...head, frame: summary })
              else process.stdout.write(`${text}\n  ${f.codec} frame ${f.data.length} B in ${f.packets} packets${f.keyframe ? ' keyframe' : ''}${f.complete ? ' complete' : ` INCOMPLETE (missing ${JSON.stringify(f.missing)})`} rtp ts ${f.rtpTimestamp} seq ${f.firstSeq}…${f.lastSeq} ssrc ${f.ssrc.toString(16)}${summary.parameterSets.length ? ` ${summary.parameterSets.join('+')}` : ''}\n`)
            } else if (kind === 'video') {
              const rtp = rtpHeader(b)
              if (o.json) jsonLine({ ...head, frame: { length: b.length, rtp } })
              else process.stdout.write(`${text}${rtp ? ` rtp pt ${rtp.pt} seq ${rtp.seq} ts ${rtp.timestamp} ssrc ${rtp.ssrc.toString(16)}${rtp.marker ? ' M' : ''} payload ${rtp.payload} B` : ''}\n`)
            } else if (kind === 'vlp16') {
              const p = parseVlp16Packet(b)
              if (o.json) jsonLine({ ...head, vlp16: p })
              else process.stdout.write(`${text}${p ? ` VLP-16 azimuth ${(p.azimuths[0] / 100).toFixed(2)}°…${(p.azimuths[11] / 100).toFixed(2)}° t ${p.timestampUs} µs mode 0x${p.returnMode.toString(16)} first return ${p.firstDistanceM.toFixed(3)} m` : ''}\n`)
            } else if (o.json) jsonLine({ ...head, hex: Buffer.from(b.subarray(0, o.bytes)).toString('hex') })
            else process.stdout.write(`${text}\n${hexDump(b, o.bytes)}\n`)
            if (o.count !== undefined && ++n >= o.count) done()
          },
          { qos: { reliability: 'best-effort', durability: 'volatile', deadlineMs: Infinity, livelinessLeaseMs: Infinity } },
        )
      })
    } catch (err) {
      fail(err, 'onbus echo')
    } finally {
      stop.dispose()
      j.close()
    }
  })
}
