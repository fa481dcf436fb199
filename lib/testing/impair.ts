/**
 * A UDP impairment relay for tests and rigs: datagrams in on one port, out
 * to a destination, with seeded loss, duplication, reordering (hold-back) and
 * delay/jitter, and counters of exactly what it did.
 *
 * Decisions are drawn from a seeded PRNG in arrival order, four draws per
 * datagram whatever the configuration, so the same seed and the same input
 * sequence give the same output sequence. (One exception, by design: a
 * held-back datagram that no later datagram overtakes within
 * `reorderTimeoutMs` is released by its timer, which depends on timing.)
 *
 * Replies from the destination (RTCP receiver reports, acknowledgements) go
 * back, unimpaired, to the last source seen (`reverse`, default on).
 *
 * As a command line tool for rigs:
 *
 *     node dist/lib/testing/impair.js --listen 127.0.0.1:5000 --forward 127.0.0.1:5004 \
 *       --loss 0.02 --reorder 0.01 --delay 20 --jitter 5 --seed 1
 *
 * prints its counters as one JSON line per second (and at exit on SIGINT).
 */
import { EventEmitter } from 'node:events'
import { isIP } from 'node:net'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { createUdpLink, type UdpLink } from '../links/udp/index.js'
import { invalidArgValue } from '../errors.js'
import { validatePort } from '../util/validate.js'

/** Options of {@link createImpairRelay}. */
export interface ImpairOptions {
  /** Where the relay listens. Default 127.0.0.1, ephemeral port (see `address()`). */
  listen?: { address?: string; port?: number }
  /** Where datagrams go. */
  forward: { host: string; port: number }
  /** Probability (0–1) that a datagram is dropped. */
  loss?: number
  /** Probability that a datagram is sent twice. */
  duplicate?: number
  /** Probability that a datagram is held back until `reorderDepth` later ones have passed. */
  reorder?: number
  /** Datagrams that overtake a held-back one. Default 3. */
  reorderDepth?: number
  /** Longest a held-back datagram waits for overtakers. Default 50 ms. */
  reorderTimeoutMs?: number
  /** Fixed delay added to every datagram. */
  delayMs?: number
  /** Extra delay uniform in [0, jitterMs); order is kept (send times never decrease), so jitter alone does not reorder. */
  jitterMs?: number
  /** PRNG seed (32-bit). Default 1. */
  seed?: number
  /** Relay replies from the destination back to the last source (unimpaired). Default true. */
  reverse?: boolean
}

/** What the relay did. Once `pending` is 0: `forwarded = received − dropped + duplicated`. */
export interface ImpairCounters {
  received: number
  forwarded: number
  dropped: number
  duplicated: number
  /** Datagrams held back (each overtaken by later ones, unless released by timeout). */
  reordered: number
  /** Held-back datagrams released by the timeout rather than by overtakers. */
  reorderTimeouts: number
  /** Datagrams that waited in the delay queue. */
  delayed: number
  /** Datagrams held or queued right now. */
  pending: number
  /** Replies relayed back to the source. */
  reverse: number
  sendErrors: number
}

/** mulberry32: small, fast, good enough for test decisions, and the same on every platform. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Held {
  data: Buffer
  copies: number
  left: number
  since: number
}

/**
 * The relay. Create with {@link createImpairRelay}. Events: `'error'`, `'close'`.
 */
export class ImpairRelay extends EventEmitter {
  private readonly inLink: UdpLink
  private readonly outLink: UdpLink
  private readonly rnd: () => number
  private readonly o: Required<Omit<ImpairOptions, 'listen' | 'forward'>> & { forward: { host: string; port: number } }
  private held: Held[] = []
  private delayQ: { data: Buffer; due: number }[] = []
  private lastDue = 0
  private delayTimer: NodeJS.Timeout | null = null
  private holdTimer: NodeJS.Timeout | null = null
  private source: { address: string; port: number } | null = null
  private closed = false
  private readonly c: ImpairCounters = {
    received: 0,
    forwarded: 0,
    dropped: 0,
    duplicated: 0,
    reordered: 0,
    reorderTimeouts: 0,
    delayed: 0,
    pending: 0,
    reverse: 0,
    sendErrors: 0,
  }

  /** @internal use {@link createImpairRelay} */
  constructor(opts: ImpairOptions) {
    super()
    this.o = {
      forward: opts.forward,
      loss: opts.loss ?? 0,
      duplicate: opts.duplicate ?? 0,
      reorder: opts.reorder ?? 0,
      reorderDepth: opts.reorderDepth ?? 3,
      reorderTimeoutMs: opts.reorderTimeoutMs ?? 50,
      delayMs: opts.delayMs ?? 0,
      jitterMs: opts.jitterMs ?? 0,
      seed: opts.seed ?? 1,
      reverse: opts.reverse ?? true,
    }
    this.rnd = seededRandom(this.o.seed)
    const family = isIP(opts.forward.host) === 6 ? 6 : 4
    const loop = family === 6 ? '::1' : '127.0.0.1'
    this.inLink = createUdpLink({ address: opts.listen?.address ?? loop, port: opts.listen?.port ?? 0, timestamps: false, rcvBuf: 8 << 20 })
    this.outLink = createUdpLink({ address: family === 6 ? '::' : '0.0.0.0', family, port: 0, timestamps: false, rxSlots: 256 })
    // Counted; re-emitted only when someone listens, so a rig's relay never dies of a send error.
    const onErr = (e: Error) => {
      this.c.sendErrors++
      if (this.listenerCount('error') > 0) this.emit('error', e)
    }
    this.inLink.on('error', onErr)
    this.outLink.on('error', onErr)
    this.inLink.onBatch((b) => {
      const out: Buffer[] = []
      for (let i = 0; i < b.length; i++) {
        this.source = { address: b.address(i), port: b.port(i) }
        this.onDatagram(b.copy(i), out)
      }
      this.send(out)
    })
    this.outLink.onBatch((b) => {
      if (!this.o.reverse || !this.source) return
      const replies = b.copyAll()
      this.c.reverse += replies.length
      this.inLink.sendBatch(replies, this.source, (err) => {
        if (err) this.c.sendErrors++
      })
    })
  }

  /** The address and port the relay listens on. */
  address(): { address: string; port: number } {
    const a = this.inLink.address()
    return { address: a.address, port: a.port }
  }

  /** A snapshot of the counters. */
  counters(): ImpairCounters {
    return { ...this.c, pending: this.held.reduce((n, h) => n + h.copies, 0) + this.delayQ.length }
  }

  private onDatagram(data: Buffer, out: Buffer[]): void {
    this.c.received++
    // Four draws per datagram whatever is configured: the sequence of decisions depends only on the seed.
    const rLoss = this.rnd()
    const rDup = this.rnd()
    const rReorder = this.rnd()
    const rJitter = this.rnd()
    if (rLoss < this.o.loss) {
      this.c.dropped++
      return
    }
    const copies = rDup < this.o.duplicate ? 2 : 1
    if (copies === 2) this.c.duplicated++
    if (rReorder < this.o.reorder) {
      this.c.reordered++
      this.held.push({ data, copies, left: this.o.reorderDepth, since: performance.now() })
      this.armHoldTimer()
      return
    }
    for (let k = 0; k < copies; k++) this.emitOut(data, rJitter, out)
    // This datagram overtook every held one; release those that have been overtaken enough.
    if (this.held.length) {
      const keep: Held[] = []
      for (const h of this.held) {
        if (--h.left <= 0) for (let k = 0; k < h.copies; k++) this.emitOut(h.data, rJitter, out)
        else keep.push(h)
      }
      this.held = keep
    }
  }

  private emitOut(data: Buffer, rJitter: number, out: Buffer[]): void {
    if (this.o.delayMs <= 0 && this.o.jitterMs <= 0) {
      out.push(data)
      return
    }
    const due = Math.max(this.lastDue, performance.now() + this.o.delayMs + rJitter * this.o.jitterMs)
    this.lastDue = due
    this.delayQ.push({ data, due })
    this.c.delayed++
    this.armDelayTimer()
  }

  private send(out: Buffer[]): void {
    if (out.length === 0 || this.closed) return
    this.c.forwarded += out.length
    this.outLink.sendBatch(out, { port: this.o.forward.port, address: this.o.forward.host }, (err) => {
      if (err) this.c.sendErrors++
    })
  }

  private armDelayTimer(): void {
    if (this.delayTimer || this.delayQ.length === 0 || this.closed) return
    this.delayTimer = setTimeout(() => {
      this.delayTimer = null
      const t = performance.now() + 0.5
      let n = 0
      while (n < this.delayQ.length && this.delayQ[n].due <= t) n++
      this.send(this.delayQ.splice(0, n).map((d) => d.data))
      this.armDelayTimer()
    }, Math.max(0, this.delayQ[0].due - performance.now()))
  }

  private armHoldTimer(): void {
    if (this.holdTimer || this.held.length === 0 || this.closed) return
    this.holdTimer = setTimeout(() => {
      this.holdTimer = null
      const t = performance.now()
      const out: Buffer[] = []
      const keep: Held[] = []
      for (const h of this.held) {
        if (t - h.since >= this.o.reorderTimeoutMs) {
          this.c.reorderTimeouts++
          for (let k = 0; k < h.copies; k++) this.emitOut(h.data, 0, out)
        } else keep.push(h)
      }
      this.held = keep
      this.send(out)
      this.armHoldTimer()
    }, Math.max(1, this.o.reorderTimeoutMs - (performance.now() - this.held[0].since)))
  }

  /** Closes both links; datagrams still held or delayed are discarded (see `counters().pending` before closing). */
  close(cb?: () => void): void {
    if (this.closed) {
      if (cb) process.nextTick(cb)
      return
    }
    this.closed = true
    if (this.delayTimer) clearTimeout(this.delayTimer)
    if (this.holdTimer) clearTimeout(this.holdTimer)
    let left = 2
    const done = () => {
      if (--left === 0) {
        this.emit('close')
        cb?.()
      }
    }
    this.inLink.close(done)
    this.outLink.close(done)
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await new Promise<void>((r) => this.close(r))
  }
}

function probability(v: number | undefined, name: string): void {
  if (v !== undefined && !(typeof v === 'number' && v >= 0 && v <= 1)) throw invalidArgValue(name, v, 'must be a probability between 0 and 1')
}

/**
 * Starts an impairment relay.
 * @example
 * const relay = createImpairRelay({ forward: { host: '127.0.0.1', port: 5004 }, loss: 0.02, reorder: 0.01, seed: 7 })
 * const tx = createRtpSender({ host: '127.0.0.1', port: relay.address().port, codec: 'h264' })
 */
export function createImpairRelay(opts: ImpairOptions): ImpairRelay {
  if (!opts || typeof opts !== 'object' || !opts.forward) throw invalidArgValue('options.forward', opts?.forward, 'is required ({ host, port })')
  if (isIP(opts.forward.host) === 0) throw invalidArgValue('options.forward.host', opts.forward.host, 'must be a numeric IP address')
  validatePort(opts.forward.port, 'options.forward.port', false)
  probability(opts.loss, 'options.loss')
  probability(opts.duplicate, 'options.duplicate')
  probability(opts.reorder, 'options.reorder')
  for (const k of ['reorderDepth', 'reorderTimeoutMs', 'delayMs', 'jitterMs'] as const) {
    const v = opts[k]
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && Number.isFinite(v))) throw invalidArgValue(`options.${k}`, v, 'must be a non-negative number')
  }
  return new ImpairRelay(opts)
}

function hostPort(s: string, name: string): { host: string; port: number } {
  const i = s.lastIndexOf(':')
  if (i < 0) throw invalidArgValue(name, s, 'must be host:port')
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) }
}

/** The command line tool (see the file comment). */
export function main(argv: string[] = process.argv.slice(2)): ImpairRelay {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: 'string', default: '127.0.0.1:0' },
      forward: { type: 'string' },
      loss: { type: 'string' },
      duplicate: { type: 'string' },
      reorder: { type: 'string' },
      'reorder-depth': { type: 'string' },
      delay: { type: 'string' },
      jitter: { type: 'string' },
      seed: { type: 'string' },
    },
  })
  if (!values.forward) throw invalidArgValue('--forward', undefined, 'is required (host:port)')
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v))
  const listen = hostPort(values.listen as string, '--listen')
  const relay = createImpairRelay({
    listen: { address: listen.host, port: listen.port },
    forward: hostPort(values.forward, '--forward'),
    loss: num(values.loss),
    duplicate: num(values.duplicate),
    reorder: num(values.reorder),
    reorderDepth: num(values['reorder-depth']),
    delayMs: num(values.delay),
    jitterMs: num(values.jitter),
    seed: num(values.seed),
  })
  const a = relay.address()
  console.log(JSON.stringify({ listening: `${a.address}:${a.port}` }))
  const tick = setInterval(() => console.log(JSON.stringify(relay.counters())), 1000)
  process.once('SIGINT', () => {
    clearInterval(tick)
    console.log(JSON.stringify(relay.counters()))
    relay.close()
  })
  return relay
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main()
