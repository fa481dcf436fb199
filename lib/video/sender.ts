/**
 * The RTP video sender: H.264 / H.265 access units in, RTP packets out over
 * an onbus UDP link, with RTCP sender reports and keyframe requests back.
 *
 * Per frame: the access unit is packetised (lib/video/packetize.ts, one
 * allocation), the 12-byte RTP headers are written in place, and the packets
 * go to the kernel with one `sendBatch` (sendmmsg; runs of equal-size FU
 * fragments as UDP GSO super-packets), so a frame costs about one system
 * call. With pacing the same packets are released on a timer instead.
 */
import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import { createUdpLink, type UdpLink } from '../links/udp/index.js'
import type { UdpBatch } from '../links/udp/batch.js'
import { invalidArgType, invalidArgValue, onbusError } from '../errors.js'
import { nextPow2, validateInt, validatePort, validateString } from '../util/validate.js'
import { whenAborted } from '../util/abort.js'
import { now } from '../time.js'
import { Rtp, RTP_VIDEO_CLOCK_RATE } from './types.js'
import { isKeyframeNal, isParameterSet, nalType, splitNals, type VideoCodec } from './annexb.js'
import { MIN_MTU, newPacketizeCounters, packetize, RTP_HEADER_SIZE, type AggregateMode } from './packetize.js'
import { collectParameterSets, generateSdp, type ParameterSets } from './sdp.js'
import {
  buildBye,
  buildSdesCname,
  buildSenderReport,
  isRtcp,
  ntpFromNs,
  ntpMiddle,
  parseRtcp,
  type RtcpPacket,
} from './rtcp.js'

/** Pacing of a sender: spread packets instead of sending each frame as one burst. */
export interface RtpPacing {
  /** Release packets at this rate in bits per second (RTP payload + headers). */
  bitrate?: number
  /** Spread each frame's packets evenly over this many milliseconds. */
  spreadMs?: number
  /** Packets queued for pacing beyond which a new frame is dropped (counted in `framesDropped`). Default 8192. */
  maxQueuePackets?: number
}

/** Options of {@link createRtpSender}. */
export interface RtpSenderOptions {
  /** Destination address (numeric IPv4 or IPv6, unicast or multicast). */
  host: string
  /** Destination RTP port; RTCP goes to `rtcpPort` (default `port + 1`). */
  port: number
  codec: VideoCodec
  /** Payload type. Default 96 (H.264) / 97 (H.265), `Rtp.DEFAULT_PT` in lib/video/types.ts. */
  payloadType?: number
  /** Largest RTP packet in bytes (header + payload). Default 1400, as `rtph264pay`. */
  mtu?: number
  /** Default random. */
  ssrc?: number
  /** Default 90000 (the only rate RFC 6184/7798 allow). */
  clockRate?: number
  /** STAP-A / AP aggregation: `'parameter-sets'` (default: SPS/PPS/SEI ahead of a picture), `'all'`, `'none'`. */
  aggregate?: AggregateMode
  /** Put the last seen parameter sets ahead of a keyframe that lacks them (default true), so a receiver joining late can decode. */
  repeatParameterSets?: boolean
  /** Parameter sets known before the first frame (for the SDP). */
  parameterSets?: ParameterSets
  pacing?: RtpPacing
  /** RTCP: sender reports every ~`intervalMs` (default 1000), receive RR/PLI/FIR/NACK. Default on. */
  rtcp?: boolean | { port?: number; intervalMs?: number; cname?: string }
  /** Local address to bind. Default: `host` itself when it is loopback, else the address of the interface the route to `host` leaves by (the wildcard address for multicast, or with no route). RTCP from other hosts than `host` is counted and ignored (any source for multicast). */
  localAddress?: string
  /** Local RTP port (RTCP on the next one). Default: an ephemeral pair. */
  localPort?: number
  /**
   * Answer RTCP generic NACKs by sending the lost packets again, as they were
   * (same SSRC and sequence number, no RTX stream), from a history of the last
   * `historyPackets` (default 1024) packets. Off by default.
   */
  retransmit?: boolean | { historyPackets?: number }
  /** Send runs of equal-size fragments as UDP GSO super-packets (default true). */
  gso?: boolean
  /** Kernel send buffer (bytes). */
  sndBuf?: number
  dscp?: number
  multicastTtl?: number
  multicastInterface?: string
  signal?: AbortSignal
}

/** Per-frame options of {@link RtpSender.sendFrame}. */
export interface SendFrameOptions {
  /** RTP timestamp (90 kHz units, wraps at 2^32). */
  rtpTimestamp?: number
  /** Presentation time in microseconds from the start of the stream (converted with the clock rate). */
  ptsUs?: number
  /** Capture time on the realtime clock (ns), for the RTCP sender-report mapping. Default: now. */
  captureTime?: bigint
  /** Override keyframe detection (IDR / IRAP NAL present). */
  keyframe?: boolean
}

/** Counters of a sender. */
export interface RtpSenderStats {
  framesSent: number
  keyframesSent: number
  /** Frames refused because the pacing queue was full. */
  framesDropped: number
  packetsSent: number
  /** RTP payload octets (the sender report's octet count). */
  payloadOctets: number
  /** Bytes on the wire (RTP headers included). */
  bytesSent: number
  singleNalPackets: number
  aggregationPackets: number
  fragmentPackets: number
  /** Parameter sets put ahead of keyframes that lacked them. */
  parameterSetsInserted: number
  /** Packets waiting in the pacing queue. */
  queuedPackets: number
  /** sendmmsg calls made by the RTP link. */
  sendCalls: number
  /** Datagrams (RTP and RTCP) the kernel refused. */
  sendErrors: number
  /** Send or socket errors reported (as `'error'` events when there is a listener). */
  errors: number
  senderReports: number
  rtcpReceived: number
  /** Malformed or foreign RTCP, per reason. */
  rtcpRejected: Record<string, number>
  receiverReports: number
  keyframeRequests: number
  nacks: number
  /** Packets sent again for NACKs (`retransmit` option). */
  retransmitted: number
  /** NACKed packets no longer in the history. */
  retransmitMisses: number
  lastReceiverReport?: ReceiverReportInfo
}

/** A report block about this sender's stream, as the `'receiver-report'` event gives it. */
export interface ReceiverReportInfo {
  /** SSRC of the receiver that sent it. */
  from: number
  fractionLost: number
  cumulativeLost: number
  extendedHighestSeq: number
  /** Interarrival jitter in milliseconds. */
  jitterMs: number
  /** Round-trip time from LSR/DLSR, when the receiver had an SR. */
  rttMs?: number
}

/** The `'keyframe-request'` event. */
export interface KeyframeRequest {
  reason: 'pli' | 'fir'
  /** SSRC of the requesting receiver. */
  from: number
}

interface Queued {
  pkt: Buffer
  due: number // ms, performance.now() clock
}

const DEFAULT_MTU = 1400

/**
 * An RTP video sender. Create with {@link createRtpSender}.
 *
 * Events: `'keyframe-request'` ({@link KeyframeRequest}), `'receiver-report'`
 * ({@link ReceiverReportInfo}), `'nack'` (sequence numbers), `'bye'` (ssrc),
 * `'error'`, `'close'`.
 */
export class RtpSender extends EventEmitter {
  readonly codec: VideoCodec
  readonly ssrc: number
  readonly payloadType: number
  readonly clockRate: number
  readonly mtu: number
  readonly host: string
  readonly port: number
  readonly rtcpPort: number
  private readonly link: UdpLink
  private readonly rtcpLink: UdpLink | null
  private readonly aggregate: AggregateMode
  private readonly repeatPs: boolean
  private readonly gso: boolean
  private readonly ps: ParameterSets
  private readonly pacing: RtpPacing | undefined
  private readonly cname: string
  private readonly srIntervalMs: number
  private seq: number
  private readonly tsBase: number
  private readonly startMono: bigint
  private mapTs = 0
  private mapNs = 0n
  private sentAny = false
  private srTimer: NodeJS.Timeout | null = null
  private paceTimer: NodeJS.Timeout | null = null
  private queue: Queued[] = []
  private queueHead = 0
  private paceNext = 0
  private closed = false
  private readonly remoteIsLocal: boolean
  private lastFirSeq = new Map<number, number>()
  /** Retransmission history, indexed by sequence number modulo its size (power of two). */
  private readonly history: (Buffer | undefined)[] | null
  private readonly counters = newPacketizeCounters()
  private readonly s = {
    framesSent: 0,
    keyframesSent: 0,
    framesDropped: 0,
    packetsSent: 0,
    payloadOctets: 0,
    bytesSent: 0,
    parameterSetsInserted: 0,
    errorEvents: 0,
    senderReports: 0,
    rtcpReceived: 0,
    rtcpRejected: {} as Record<string, number>,
    receiverReports: 0,
    keyframeRequests: 0,
    nacks: 0,
    retransmitted: 0,
    retransmitMisses: 0,
    lastReceiverReport: undefined as ReceiverReportInfo | undefined,
  }
  private abortCleanup: () => void

  /** @internal use {@link createRtpSender} */
  constructor(o: RtpSenderOptions) {
    super()
    this.codec = o.codec
    this.host = o.host
    this.port = o.port
    this.payloadType = o.payloadType ?? Rtp.DEFAULT_PT[o.codec]
    this.clockRate = o.clockRate ?? RTP_VIDEO_CLOCK_RATE
    this.mtu = o.mtu ?? DEFAULT_MTU
    const rnd = randomBytes(10)
    this.ssrc = (o.ssrc ?? rnd.readUInt32BE(0)) >>> 0
    this.seq = rnd.readUInt16BE(4)
    this.tsBase = rnd.readUInt32BE(6)
    this.startMono = now('monotonic')
    this.aggregate = o.aggregate ?? 'parameter-sets'
    this.repeatPs = o.repeatParameterSets ?? true
    this.gso = o.gso ?? true
    this.ps = { ...(o.parameterSets ?? {}) }
    this.pacing = o.pacing
    const rtx = o.retransmit
    this.history = rtx ? new Array(nextPow2(typeof rtx === 'object' ? rtx.historyPackets ?? 1024 : 1024)) : null
    const rtcp = o.rtcp ?? true
    const rtcpOpts = typeof rtcp === 'object' ? rtcp : {}
    this.rtcpPort = rtcpOpts.port ?? o.port + 1
    this.srIntervalMs = rtcpOpts.intervalMs ?? 1000
    this.cname = rtcpOpts.cname ?? `onbus-${this.ssrc.toString(16)}@${o.host}`
    const family = isIP(o.host) === 6 ? 6 : 4
    this.remoteIsLocal = family === 4 ? o.host.startsWith('127.') : o.host === '::1'
    const localAddress = o.localAddress ?? (this.remoteIsLocal ? o.host : routeSource(o.host, family))
    const common = {
      address: localAddress,
      family,
      maxDatagramSize: 2048,
      rxSlots: 64,
      rcvBuf: 256 << 10,
      timestamps: false,
      sndBuf: o.sndBuf,
      dscp: o.dscp,
      multicastTtl: o.multicastTtl,
      multicastInterface: o.multicastInterface,
    } as const
    // RTP on an even port and RTCP on the next (RFC 3550 §11): receivers that
    // answer the source port + 1 reach us.
    let link: UdpLink | null = null
    let rtcpLink: UdpLink | null = null
    for (let attempt = 0; attempt < 32 && !link; attempt++) {
      const l = createUdpLink({ ...common, port: o.localPort ?? 0 })
      const p = l.address().port
      if (!rtcp) {
        link = l
        break
      }
      if (o.localPort === undefined && p % 2 === 1) {
        l.close()
        continue
      }
      try {
        rtcpLink = createUdpLink({ ...common, port: p + 1 })
        link = l
      } catch (err) {
        l.close()
        if (o.localPort !== undefined || (err as { code?: string }).code !== 'EADDRINUSE') throw err
      }
    }
    if (!link) throw onbusError('ERR_ONBUS_RTP_BIND', 'could not bind an RTP/RTCP port pair')
    this.link = link
    this.rtcpLink = rtcpLink
    const onErr = (err: Error) => this.fail(err)
    link.on('error', onErr)
    link.onBatch((b) => this.onRtcpBatch(b))
    if (rtcpLink) {
      rtcpLink.on('error', onErr)
      rtcpLink.onBatch((b) => this.onRtcpBatch(b))
    }
    this.abortCleanup = whenAborted(o.signal, () => this.close(), process.nextTick)
  }

  /** The local RTP address and port (RTCP is on the next port). */
  address(): { address: string; port: number } {
    const a = this.link.address()
    return { address: a.address, port: a.port }
  }

  /** The parameter sets seen so far (or given in the options). */
  parameterSets(): ParameterSets {
    return { ...this.ps }
  }

  /**
   * An SDP description of this stream for players (`ffmpeg -i stream.sdp`,
   * VLC, GStreamer `sdpdemux`). Call after the first keyframe was sent, or
   * pass `parameterSets` in the options, so that `sprop-*` are present.
   */
  sdp(opts: { sessionName?: string; framerate?: number } = {}): string {
    return generateSdp({
      codec: this.codec,
      address: this.host,
      port: this.port,
      rtcpPort: this.rtcpLink ? this.rtcpPort : undefined,
      payloadType: this.payloadType,
      clockRate: this.clockRate,
      origin: this.link.address().address,
      parameterSets: this.ps,
      sessionName: opts.sessionName,
      framerate: opts.framerate,
    })
  }

  /**
   * Packetises and sends one access unit (Annex-B bytes, or a list of NAL
   * units without start codes). The bytes are copied into the packets, so the
   * caller may reuse its buffer at once. Returns false when the frame was
   * queued behind a full kernel buffer or pacing queue, or dropped because
   * the pacing queue was full (`stats().framesDropped`).
   * @example
   * sender.sendFrame(au, { ptsUs: frameIndex * 33_333 })
   */
  sendFrame(au: Uint8Array | Uint8Array[], opts: SendFrameOptions = {}): boolean {
    if (this.closed) throw onbusError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running')
    let nals: Uint8Array[]
    if (Array.isArray(au)) nals = au
    else if (au instanceof Uint8Array) {
      nals = splitNals(au)
      // A lone NAL unit without a start code would otherwise vanish without a trace.
      if (nals.length === 0 && au.length > 0) throw invalidArgValue('au', `<${au.length} bytes>`, 'has no Annex-B start code (pass NAL units as an array)')
    } else throw invalidArgType('au', 'a Uint8Array or an Array of Uint8Array', au)
    if (nals.length === 0) return true
    const ts = this.timestampFor(opts)
    const capture = opts.captureTime ?? now('realtime')

    const codec = this.codec
    let key = opts.keyframe
    let hasPs = false
    for (const n of nals) {
      const t = nalType(n, codec)
      if (key === undefined && isKeyframeNal(t, codec)) key = true
      if (isParameterSet(t, codec)) hasPs = true
    }
    if (hasPs) collectParameterSets(nals, codec, this.ps)
    else if (key && this.repeatPs && this.ps.sps && this.ps.pps) {
      const sets = codec === 'h265' && this.ps.vps ? [this.ps.vps, this.ps.sps, this.ps.pps] : [this.ps.sps, this.ps.pps]
      nals = [...sets, ...nals]
      this.s.parameterSetsInserted++
    }

    if (this.pacing && this.queue.length - this.queueHead > (this.pacing.maxQueuePackets ?? 8192)) {
      this.s.framesDropped++
      return false
    }
    const pkts = packetize(nals, { codec, mtu: this.mtu, aggregate: this.aggregate }, this.counters)
    const last = pkts.length - 1
    for (let i = 0; i <= last; i++) {
      const p = pkts[i]
      p[0] = 0x80
      p[1] = (i === last ? 0x80 : 0) | this.payloadType
      p.writeUInt16BE(this.seq, 2)
      this.seq = (this.seq + 1) & 0xffff
      p.writeUInt32BE(ts, 4)
      p.writeUInt32BE(this.ssrc, 8)
      if (this.history) this.history[(this.seq - 1) & 0xffff & (this.history.length - 1)] = p
      this.s.payloadOctets += p.length - RTP_HEADER_SIZE
      this.s.bytesSent += p.length
    }
    this.s.packetsSent += pkts.length
    this.s.framesSent++
    if (key) this.s.keyframesSent++
    this.mapTs = ts
    this.mapNs = capture

    const ok = this.pacing ? this.enqueuePaced(pkts) : this.transmit(pkts)
    if (!this.sentAny) {
      this.sentAny = true
      if (this.rtcpLink) {
        this.sendReport()
        this.scheduleReport()
      }
    }
    return ok
  }

  private timestampFor(o: SendFrameOptions): number {
    if (o.rtpTimestamp !== undefined) return o.rtpTimestamp >>> 0
    if (o.ptsUs !== undefined) return (this.tsBase + Math.round((o.ptsUs * this.clockRate) / 1e6)) >>> 0
    const elapsed = Number(now('monotonic') - this.startMono)
    return (this.tsBase + Math.round((elapsed * this.clockRate) / 1e9)) >>> 0
  }

  /** One sendBatch; GSO from the first full-size packet so its run forms super-packets. */
  private transmit(pkts: Buffer[]): boolean {
    const dest = { port: this.port, address: this.host }
    const cb = (err: Error | null) => {
      if (err) this.fail(err)
    }
    if (!this.gso || pkts.length < 2) return this.link.sendBatch(pkts, dest, cb)
    let first = 0
    while (first < pkts.length && pkts[first].length !== this.mtu) first++
    if (first === 0 || first >= pkts.length - 1) return this.link.sendBatch(pkts, { ...dest, gso: first === 0 }, cb)
    const a = this.link.sendBatch(pkts.slice(0, first), dest, cb)
    const b = this.link.sendBatch(pkts.slice(first), { ...dest, gso: true }, cb)
    return a && b
  }

  private enqueuePaced(pkts: Buffer[]): boolean {
    const p = this.pacing as RtpPacing
    const t = performance.now()
    let due = Math.max(t, this.paceNext)
    if (p.bitrate) {
      for (const pkt of pkts) {
        this.queue.push({ pkt, due })
        due += ((pkt.length + 28) * 8 * 1000) / p.bitrate
      }
    } else {
      const step = (p.spreadMs ?? 0) / pkts.length
      for (const pkt of pkts) {
        this.queue.push({ pkt, due })
        due += step
      }
    }
    this.paceNext = due
    this.releasePaced()
    return this.queue.length - this.queueHead === 0
  }

  private releasePaced(): void {
    if (this.closed) return
    const t = performance.now() + 0.5 // timers fire late, not early: release what is due within half a millisecond
    const batch: Buffer[] = []
    while (this.queueHead < this.queue.length && this.queue[this.queueHead].due <= t) batch.push(this.queue[this.queueHead++].pkt)
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead)
      this.queueHead = 0
    }
    if (batch.length) this.transmit(batch)
    if (this.queueHead < this.queue.length && !this.paceTimer) {
      const wait = Math.max(0, this.queue[this.queueHead].due - performance.now())
      this.paceTimer = setTimeout(() => {
        this.paceTimer = null
        this.releasePaced()
      }, wait)
    }
  }

  private scheduleReport(): void {
    if (this.closed || !this.rtcpLink) return
    // RFC 3550 §6.3.1: randomise the interval (0.5–1.5 ×) so senders do not synchronise.
    const wait = this.srIntervalMs * (0.5 + Math.random())
    this.srTimer = setTimeout(() => {
      this.srTimer = null
      this.sendReport()
      this.scheduleReport()
    }, wait)
    if (!this.refed) this.srTimer.unref()
  }

  private buildSr(): Buffer {
    const t = now('realtime')
    const [ntpSec, ntpFrac] = ntpFromNs(t)
    // The RTP time of "now" on the same timeline as the last frame's capture time.
    const rtp = (this.mapTs + Math.round((Number(t - this.mapNs) * this.clockRate) / 1e9)) >>> 0
    return buildSenderReport({
      ssrc: this.ssrc,
      ntpSec,
      ntpFrac,
      rtpTimestamp: rtp,
      packetCount: this.s.packetsSent,
      octetCount: this.s.payloadOctets,
    })
  }

  /** Sends a sender report now (also done every ~second once a frame was sent). */
  sendReport(): void {
    if (this.closed || !this.rtcpLink) return
    const compound = Buffer.concat([this.buildSr(), buildSdesCname(this.ssrc, this.cname)])
    this.rtcpLink.send(compound, this.rtcpPort, this.host, (err) => {
      if (err) this.fail(err)
    })
    this.s.senderReports++
  }

  /** A send or socket error: counted (the links count failed datagrams); `'error'` only when someone listens, so a local send failure never takes the process down. */
  private fail(err: Error): void {
    this.s.errorEvents++
    if (this.listenerCount('error') > 0) this.emit('error', err)
  }

  private reject(reason: string): void {
    this.s.rtcpRejected[reason] = (this.s.rtcpRejected[reason] ?? 0) + 1
  }

  private onRtcpBatch(b: UdpBatch): void {
    for (let i = 0; i < b.length; i++) {
      const data = b.view(i)
      if (!isRtcp(data)) {
        this.reject('not-rtcp')
        continue
      }
      if (!this.remoteIsLocal && b.address(i) !== this.host && !isMulticastAddress(this.host)) {
        this.reject('foreign-source')
        continue
      }
      this.s.rtcpReceived++
      const { packets, error } = parseRtcp(data)
      if (error) this.reject(error)
      for (const p of packets) this.onRtcp(p)
    }
  }

  private onRtcp(p: RtcpPacket): void {
    switch (p.type) {
      case 'sr':
      case 'rr':
        for (const r of p.reports) {
          if (r.ssrc !== this.ssrc) continue
          const info: ReceiverReportInfo = {
            from: p.ssrc,
            fractionLost: r.fractionLost,
            cumulativeLost: r.cumulativeLost,
            extendedHighestSeq: r.extendedHighestSeq,
            jitterMs: (r.jitter * 1000) / this.clockRate,
          }
          if (r.lastSr !== 0) {
            const [sec, frac] = ntpFromNs(now('realtime'))
            const a = ntpMiddle(sec, frac)
            const rtt = (a - r.lastSr - r.delaySinceLastSr) >>> 0
            if (rtt < 0x80000000) info.rttMs = (rtt * 1000) / 65536
          }
          this.s.receiverReports++
          this.s.lastReceiverReport = info
          this.emit('receiver-report', info)
        }
        break
      case 'pli':
        if (p.mediaSsrc === this.ssrc || p.mediaSsrc === 0) this.requestKeyframe({ reason: 'pli', from: p.senderSsrc })
        break
      case 'fir':
        for (const e of p.entries) {
          if (e.ssrc !== this.ssrc) continue
          // A repeated FIR with the same sequence number is a retransmission of the same request (RFC 5104 §4.3.1.2).
          if (this.lastFirSeq.get(p.senderSsrc) === e.seq) continue
          this.lastFirSeq.set(p.senderSsrc, e.seq)
          this.requestKeyframe({ reason: 'fir', from: p.senderSsrc })
        }
        break
      case 'nack':
        if (p.mediaSsrc === this.ssrc) {
          this.s.nacks++
          this.emit('nack', p.lost)
          if (this.history) this.retransmit(p.lost)
        }
        break
      case 'bye':
        this.emit('bye', p.ssrcs)
        break
    }
  }

  private retransmit(lost: number[]): void {
    const h = this.history as (Buffer | undefined)[]
    const again: Buffer[] = []
    for (const seq of lost) {
      const pkt = h[seq & (h.length - 1)]
      // The slot may hold a newer packet by now: only the one with that exact sequence number is resent.
      if (pkt && pkt.readUInt16BE(2) === seq) again.push(pkt)
      else this.s.retransmitMisses++
    }
    if (again.length === 0 || this.closed) return
    this.s.retransmitted += again.length
    this.link.sendBatch(again, { port: this.port, address: this.host }, (err) => {
      if (err) this.fail(err)
    })
  }

  private requestKeyframe(r: KeyframeRequest): void {
    this.s.keyframeRequests++
    this.emit('keyframe-request', r)
  }

  /** Counters of this sender. */
  stats(): RtpSenderStats {
    const l = this.link.stats()
    return {
      framesSent: this.s.framesSent,
      keyframesSent: this.s.keyframesSent,
      framesDropped: this.s.framesDropped,
      packetsSent: this.s.packetsSent,
      payloadOctets: this.s.payloadOctets,
      bytesSent: this.s.bytesSent,
      singleNalPackets: this.counters.single,
      aggregationPackets: this.counters.aggregated,
      fragmentPackets: this.counters.fragments,
      parameterSetsInserted: this.s.parameterSetsInserted,
      queuedPackets: this.queue.length - this.queueHead + l.txQueued,
      sendCalls: l.txCalls,
      sendErrors: l.txErrors + (this.rtcpLink?.stats().txErrors ?? 0),
      errors: this.s.errorEvents,
      senderReports: this.s.senderReports,
      rtcpReceived: this.s.rtcpReceived,
      rtcpRejected: { ...this.s.rtcpRejected },
      receiverReports: this.s.receiverReports,
      keyframeRequests: this.s.keyframeRequests,
      nacks: this.s.nacks,
      retransmitted: this.s.retransmitted,
      retransmitMisses: this.s.retransmitMisses,
      lastReceiverReport: this.s.lastReceiverReport,
    }
  }

  private refed = true
  /** Keep the process alive while the sender is open (default). */
  ref(): this {
    this.refed = true
    this.link.ref()
    this.rtcpLink?.ref()
    this.srTimer?.ref()
    return this
  }
  /** Let the process exit although the sender is open. */
  unref(): this {
    this.refed = false
    this.link.unref()
    this.rtcpLink?.unref()
    this.srTimer?.unref()
    return this
  }

  /**
   * Sends an RTCP BYE (after a last sender report) and closes both links.
   * Packets still in the pacing queue are discarded. Idempotent.
   */
  close(cb?: () => void): void {
    if (this.closed) {
      if (cb) process.nextTick(cb)
      return
    }
    if (this.rtcpLink && this.sentAny) {
      this.rtcpLink.send(Buffer.concat([this.buildSr(), buildSdesCname(this.ssrc, this.cname), buildBye(this.ssrc)]), this.rtcpPort, this.host, () => {})
    }
    this.closed = true
    if (this.srTimer) clearTimeout(this.srTimer)
    if (this.paceTimer) clearTimeout(this.paceTimer)
    this.queue = []
    this.queueHead = 0
    this.abortCleanup()
    let left = this.rtcpLink ? 2 : 1
    const done = () => {
      if (--left === 0) {
        this.emit('close')
        cb?.()
      }
    }
    this.link.close(done)
    this.rtcpLink?.close(done)
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await new Promise<void>((resolve) => this.close(resolve))
  }
}

/**
 * The local address the kernel would send from to reach `host` (connect() on
 * a UDP socket sends nothing; getsockname then names the route's source), so
 * the sender listens for RTCP on that one interface rather than on all.
 * Falls back to the wildcard address when there is no route yet.
 */
function routeSource(host: string, family: 4 | 6): string {
  const any = family === 6 ? '::' : '0.0.0.0'
  if (isMulticastAddress(host)) return any // replies come from anyone on the group's interface
  let probe: UdpLink | null = null
  try {
    probe = createUdpLink({ address: any, family, receive: false, timestamps: false, connect: { address: host, port: 9 } })
    return probe.address().address
  } catch {
    return any
  } finally {
    probe?.close()
  }
}

function isMulticastAddress(a: string): boolean {
  if (isIP(a) === 4) {
    const f = Number(a.split('.')[0])
    return f >= 224 && f <= 239
  }
  return a.toLowerCase().startsWith('ff')
}

/**
 * Creates an RTP video sender bound to a local port pair (RTP, RTCP).
 * @example
 * const tx = createRtpSender({ host: '127.0.0.1', port: 5004, codec: 'h264' })
 * tx.on('keyframe-request', () => encoder.forceKeyframe())
 * for (const au of accessUnits) tx.sendFrame(au, { ptsUs })
 * writeFileSync('stream.sdp', tx.sdp())
 */
export function createRtpSender(opts: RtpSenderOptions): RtpSender {
  if (opts === null || typeof opts !== 'object') throw invalidArgType('options', 'of type object', opts)
  validateString(opts.host, 'options.host')
  if (isIP(opts.host) === 0) throw invalidArgValue('options.host', opts.host, 'must be a numeric IPv4 or IPv6 address')
  validatePort(opts.port, 'options.port', false)
  if (opts.codec !== 'h264' && opts.codec !== 'h265') throw invalidArgValue('options.codec', opts.codec, "must be 'h264' or 'h265'")
  if (opts.payloadType !== undefined) validateInt(opts.payloadType, 'options.payloadType', 0, 127)
  if (opts.mtu !== undefined) validateInt(opts.mtu, 'options.mtu', MIN_MTU, 65507)
  if (opts.ssrc !== undefined) validateInt(opts.ssrc, 'options.ssrc', 0, 0xffffffff)
  if (opts.clockRate !== undefined) validateInt(opts.clockRate, 'options.clockRate', 1, 0xffffffff)
  if (opts.localPort !== undefined) validatePort(opts.localPort, 'options.localPort')
  if (opts.aggregate !== undefined && !['none', 'parameter-sets', 'all'].includes(opts.aggregate))
    throw invalidArgValue('options.aggregate', opts.aggregate, "must be 'none', 'parameter-sets' or 'all'")
  if (opts.pacing !== undefined) {
    const p = opts.pacing
    if (p === null || typeof p !== 'object') throw invalidArgType('options.pacing', 'of type object', p)
    if (p.bitrate !== undefined && !(typeof p.bitrate === 'number' && p.bitrate > 0)) throw invalidArgValue('options.pacing.bitrate', p.bitrate, 'must be a positive number')
    if (p.spreadMs !== undefined && !(typeof p.spreadMs === 'number' && p.spreadMs >= 0)) throw invalidArgValue('options.pacing.spreadMs', p.spreadMs, 'must be a non-negative number')
  }
  if (typeof opts.retransmit === 'object' && opts.retransmit !== null && opts.retransmit.historyPackets !== undefined)
    validateInt(opts.retransmit.historyPackets, 'options.retransmit.historyPackets', 1, 32768)
  if (typeof opts.rtcp === 'object' && opts.rtcp !== null) {
    if (opts.rtcp.port !== undefined) validatePort(opts.rtcp.port, 'options.rtcp.port', false)
    if (opts.rtcp.intervalMs !== undefined) validateInt(opts.rtcp.intervalMs, 'options.rtcp.intervalMs', 10, 3_600_000)
  }
  return new RtpSender(opts)
}
