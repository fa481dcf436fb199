/**
 * Lifecycle of a UDP link: close (idempotent, on the next tick, from inside
 * its own callbacks), ref/unref and process exit, AbortSignal and
 * Symbol.asyncDispose, async iterators ending, worker threads, descriptor
 * leaks, and exceptions thrown by handlers.
 *
 * Anything that ends a process (exit with a link open, an uncaught exception,
 * a worker torn down) runs in a child process (test/fixtures/*.mjs, importing
 * dist/) so this runner survives a failure and can assert on exit code and
 * output.
 */
import { describe, it, expect, afterEach } from 'vitest'
import { getEventListeners } from 'node:events'
import { createUdpLink, type UdpLink, type UdpLinkOptions, type UdpMessage } from '../lib/index.js'
import { fdTable, leakedSince } from './helpers/fds.js'
import { runFixture, describeExit } from './helpers/child.js'
import { hasIpv6Loopback, nonLocalIpv4 } from './helpers/net.js'

const links: UdpLink[] = []
afterEach(() => {
  for (const l of links.splice(0)) l.close()
})
function link(opts: UdpLinkOptions = {}): UdpLink {
  const l = createUdpLink({ rxSlots: 64, ...opts })
  links.push(l)
  return l
}
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms))
const tick = () => new Promise<void>((r) => process.nextTick(r))

/** Resolves once `cond()` holds (polling), or rejects after `ms`. */
async function until(cond: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await wait(5)
  }
}

/** A sender and the port of a fresh receiving link. */
function pair(rxOpts: UdpLinkOptions = {}): { rx: UdpLink; tx: UdpLink; port: number } {
  const rx = link(rxOpts)
  const tx = link({ receive: false })
  return { rx, tx, port: rx.address().port }
}

function countCalls(l: UdpLink, event: string): { n: number } {
  const c = { n: 0 }
  l.on(event, () => c.n++)
  return c
}

describe('close()', () => {
  it('is idempotent: any number of calls, one "close" event, the link reports closed', async () => {
    const l = link()
    const closes = countCalls(l, 'close')
    expect(l.close()).toBe(l)
    expect(() => l.close()).not.toThrow()
    await wait(10)
    expect(() => l.close()).not.toThrow()
    await wait(10)
    expect(closes.n).toBe(1)
    expect(l.closed).toBe(true)
    expect(l.fd).toBe(-1)
  })

  it('emits "close" on the next tick, never synchronously', async () => {
    const l = link()
    let emitted = false
    l.on('close', () => (emitted = true))
    l.close()
    expect(emitted).toBe(false)
    // close() queued its tick before ours, so it has run by the time ours does.
    await tick()
    expect(emitted).toBe(true)
  })

  it('calls close(cb) once after "close"; a cb given while closing also runs; after closing, cb runs asynchronously', async () => {
    const l = link()
    const order: string[] = []
    l.on('close', () => order.push('event'))
    l.close(() => order.push('cb1'))
    l.close(() => order.push('cb2')) // while closing: waits for the same 'close'
    expect(order).toEqual([])
    await wait(10)
    expect(order).toEqual(['event', 'cb1', 'cb2'])
    let late = false
    l.close(() => (late = true)) // already closed: still called, but not synchronously
    expect(late).toBe(false)
    await tick()
    expect(late).toBe(true)
    await wait(10)
    expect(order).toEqual(['event', 'cb1', 'cb2']) // nothing ran twice
  })

  it('rejects a close callback that is not a function, without closing', () => {
    const l = link()
    expect(() => l.close('nope' as never)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }))
    expect(l.closed).toBe(false)
  })

  it('after close, I/O throws ERR_SOCKET_DGRAM_NOT_RUNNING, ref/unref are no-ops, stats keep the last figures', async () => {
    const { rx, tx, port } = pair()
    let got = 0
    rx.onBatch((b) => (got += b.length))
    for (let i = 0; i < 3; i++) tx.send(Buffer.from(`m${i}`), port)
    await until(() => got === 3, 3000, '3 datagrams')
    rx.close()
    const notRunning = expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' })
    expect(() => rx.send(Buffer.from('x'), port)).toThrow(notRunning)
    expect(() => rx.address()).toThrow(notRunning)
    expect(() => rx.setTTL(4)).toThrow(notRunning)
    expect(rx.ref()).toBe(rx)
    expect(rx.unref()).toBe(rx)
    expect(rx.stats().rxDatagrams).toBe(3)
  })

  it('inside an onBatch handler: later handlers, "message" listeners and iterators get nothing more, and nothing crashes', async () => {
    const { rx, tx, port } = pair()
    const calls = { first: 0, second: 0, message: 0 }
    const closes = countCalls(rx, 'close')
    const errors = countCalls(rx, 'error')
    rx.onBatch(() => {
      calls.first++
      rx.close()
      rx.close() // and again, still inside the handler
    })
    rx.onBatch(() => calls.second++)
    rx.on('message', () => calls.message++)
    const iterated: UdpMessage[] = []
    const iteration = (async () => {
      for await (const m of rx) iterated.push(m)
    })()
    tx.sendBatch(Array.from({ length: 16 }, (_, i) => Buffer.from(`d${i}`)), { port })
    await until(() => calls.first > 0, 3000, 'the first batch')
    await iteration // ended by the close
    // More traffic to the closed port: nothing may arrive anywhere.
    tx.sendBatch([Buffer.from('late')], { port }, () => {})
    await wait(100)
    expect(calls).toEqual({ first: 1, second: 0, message: 0 })
    expect(iterated).toEqual([])
    expect(closes.n).toBe(1)
    expect(errors.n).toBe(0)
  })

  it('inside a "message" listener: no further message is delivered, even from the same batch', async () => {
    const { rx, tx, port } = pair()
    const seen: string[] = []
    const closes = countCalls(rx, 'close')
    rx.on('message', (data: Buffer) => {
      seen.push(data.toString())
      rx.close()
    })
    tx.sendBatch(Array.from({ length: 8 }, (_, i) => Buffer.from(`d${i}`)), { port })
    await until(() => seen.length > 0, 3000, 'a message')
    await wait(100)
    expect(seen).toEqual(['d0'])
    expect(closes.n).toBe(1)
  })

  it('inside a handler, followed by forced garbage collection before the handler returns, is memory-safe (child, --expose-gc)', async () => {
    // The native wrapper becomes unreachable while its own dispatch is on the
    // stack; under the sanitizer build a use-after-free would be reported here.
    const r = await runFixture('udp-close-gc.mjs', [], { nodeArgs: ['--expose-gc'] })
    expect(r.code, describeExit(r)).toBe(0)
    expect(r.json).toContainEqual({ calls: 1 })
    expect(r.json).not.toContainEqual({ messageAfterClose: true })
  })
})

describe('async iterator', () => {
  it('ends (done) when the link closes, after yielding what arrived', async () => {
    const { rx, tx, port } = pair()
    const got: string[] = []
    const loop = (async () => {
      for await (const m of rx) {
        got.push(m.data.toString())
        if (got.length === 2) setTimeout(() => rx.close(), 10)
      }
      return 'ended'
    })()
    tx.send(Buffer.from('a'), port)
    tx.send(Buffer.from('b'), port)
    await expect(loop).resolves.toBe('ended')
    expect(got).toEqual(['a', 'b'])
  })

  it('resolves a pending next() with done when the link closes', async () => {
    const l = link()
    const it = l[Symbol.asyncIterator]()
    const pending = it.next()
    l.close()
    await expect(pending).resolves.toEqual({ value: undefined, done: true })
    await expect(it.next()).resolves.toEqual({ value: undefined, done: true })
  })

  it('is done at once when taken from a closed link', async () => {
    const l = link()
    l.close()
    await expect(l[Symbol.asyncIterator]().next()).resolves.toEqual({ value: undefined, done: true })
  })

  it('break leaves the link open and receiving; messages({ signal }) ends on abort without closing the link', async () => {
    const { rx, tx, port } = pair()
    tx.send(Buffer.from('one'), port)
    for await (const m of rx) {
      expect(m.data.toString()).toBe('one')
      break
    }
    expect(rx.closed).toBe(false)
    const ac = new AbortController()
    const loop = (async () => {
      const got: string[] = []
      for await (const m of rx.messages({ signal: ac.signal })) {
        got.push(m.data.toString())
        ac.abort()
      }
      return got
    })()
    tx.send(Buffer.from('two'), port)
    await expect(loop).resolves.toEqual(['two'])
    expect(rx.closed).toBe(false)
    let later = 0
    rx.onBatch((b) => (later += b.length))
    tx.send(Buffer.from('three'), port)
    await until(() => later === 1, 3000, 'a datagram after the iterators ended')
  })
})

describe('AbortSignal', () => {
  it('closes the link when aborted: one "close", the listener on the signal removed', async () => {
    const ac = new AbortController()
    const l = link({ signal: ac.signal })
    const closes = countCalls(l, 'close')
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1)
    ac.abort()
    expect(l.closed).toBe(true)
    await wait(10)
    expect(closes.n).toBe(1)
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0)
  })

  it('an already-aborted signal gives a closed link that still emits "close"', async () => {
    const l = link({ signal: AbortSignal.abort() })
    expect(l.closed).toBe(true)
    const closes = countCalls(l, 'close') // attached after creation: the event is on the next tick
    await wait(10)
    expect(closes.n).toBe(1)
  })

  it('closing first removes the abort listener, so a later abort does nothing', async () => {
    const ac = new AbortController()
    const l = link({ signal: ac.signal })
    const closes = countCalls(l, 'close')
    l.close()
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0)
    ac.abort()
    await wait(10)
    expect(closes.n).toBe(1)
  })
})

describe('Symbol.asyncDispose', () => {
  it('`await using` closes the link at the end of the block, after "close" was emitted', async () => {
    const order: string[] = []
    let ref: UdpLink | undefined
    {
      await using l = createUdpLink({ rxSlots: 16 })
      ref = l
      l.on('close', () => order.push('close'))
    }
    order.push('after block')
    expect(ref.closed).toBe(true)
    expect(order).toEqual(['close', 'after block'])
  })

  it('resolves at once on a closed link, and concurrent disposals share one close', async () => {
    const l = link()
    const closes = countCalls(l, 'close')
    await Promise.all([l[Symbol.asyncDispose](), l[Symbol.asyncDispose]()])
    expect(closes.n).toBe(1)
    await l[Symbol.asyncDispose]()
    expect(closes.n).toBe(1)
  })
})

describe('ref()/unref() and process exit (child process)', () => {
  // "Stays alive" is shown by our having to kill the child; the window is
  // long enough for an idle node to have exited many times over (an emulated
  // node needs ~2 s just to start, so the window grows under qemu-user).
  const STAY_MS = process.env.ONBUS_EMULATOR ? 10_000 : 1500

  it('a referenced link keeps the process alive (control)', async () => {
    const r = await runFixture('udp-exit.mjs', ['ref'], { timeoutMs: STAY_MS })
    expect(r.json, describeExit(r)).toContainEqual({ ready: 'ref' })
    expect(r.timedOut, describeExit(r)).toBe(true)
  })

  it('unref() lets the process exit (code 0) with a receiving link open', async () => {
    const r = await runFixture('udp-exit.mjs', ['unref'])
    expect(r.timedOut, describeExit(r)).toBe(false)
    expect(r.code, describeExit(r)).toBe(0)
    expect(r.json).toContainEqual(expect.objectContaining({ exit: 0 }))
  })

  it('unref() then ref() keeps it alive again', async () => {
    const r = await runFixture('udp-exit.mjs', ['unref-then-ref'], { timeoutMs: STAY_MS })
    expect(r.json, describeExit(r)).toContainEqual({ ready: 'unref-then-ref' })
    expect(r.timedOut, describeExit(r)).toBe(true)
  })

  it('repeated ref()/unref() are not counted twice: ending on unref() exits', async () => {
    const r = await runFixture('udp-exit.mjs', ['toggle'])
    expect(r.timedOut, describeExit(r)).toBe(false)
    expect(r.code, describeExit(r)).toBe(0)
  })

  it('one unref() link does not release another referenced link; unref of the last one exits', async () => {
    const r = await runFixture('udp-exit.mjs', ['two-links'])
    expect(r.timedOut, describeExit(r)).toBe(false)
    expect(r.code, describeExit(r)).toBe(0)
    expect(r.json).toContainEqual({ stillAlive: true, aClosed: false, bClosed: false })
  })

  it('close() releases the reference (exit code 0)', async () => {
    const r = await runFixture('udp-exit.mjs', ['close'])
    expect(r.timedOut, describeExit(r)).toBe(false)
    expect(r.code, describeExit(r)).toBe(0)
  })

  it('ref() on a closed link takes no reference (the process still exits)', async () => {
    const r = await runFixture('udp-exit.mjs', ['ref-after-close'])
    expect(r.timedOut, describeExit(r)).toBe(false)
    expect(r.code, describeExit(r)).toBe(0)
  })

  it('an unref()ed link still receives while something else keeps the process alive', async () => {
    const r = await runFixture('udp-exit.mjs', ['unref-still-receives'])
    expect(r.code, describeExit(r)).toBe(0)
    expect(r.json).toContainEqual({ received: 5 })
  })

  it('aborting options.signal closes the link and lets the process exit', async () => {
    const r = await runFixture('udp-exit.mjs', ['signal'])
    expect(r.timedOut, describeExit(r)).toBe(false)
    expect(r.code, describeExit(r)).toBe(0)
    expect(r.json).toContainEqual({ closed: true })
  })

  it('Symbol.asyncDispose closes the link and lets the process exit', async () => {
    const r = await runFixture('udp-exit.mjs', ['dispose'])
    expect(r.timedOut, describeExit(r)).toBe(false)
    expect(r.code, describeExit(r)).toBe(0)
    expect(r.json).toContainEqual({ disposed: true })
  })
})

describe('worker threads (child process)', () => {
  // Each worker opens 4 receiving links under a stream of datagrams and never
  // closes them; the host counts its descriptors before and after. Ten rounds:
  // the teardown races (a wake queued for JavaScript as the environment goes)
  // do not show every time.
  for (const [mode, how] of [
    ['exit', 'calls process.exit()'],
    ['natural', 'ends by itself (links unref()ed)'],
    ['terminate', 'is terminated by its parent mid-traffic'],
  ] as const) {
    it(`a worker that ${how} closes its links: no descriptor leaks, no native crash`, async () => {
      const r = await runFixture('udp-worker-host.mjs', [mode, '10'], { timeoutMs: 60_000 })
      expect(r.signal, describeExit(r)).toBeNull()
      expect(r.stderr, describeExit(r)).not.toMatch(/FATAL ERROR/)
      expect(r.code, describeExit(r)).toBe(0)
      const report = r.json.find((j) => j.mode === mode)
      expect(report, describeExit(r)).toBeDefined()
      expect(report!.leaked).toEqual([])
      expect(report!.codes).toHaveLength(10)
    })
  }
})

describe('file descriptors', () => {
  it('creating and closing 200 links of every kind leaves no descriptor behind', async () => {
    // The per-environment reactor (epoll + eventfd) opens with the first link
    // and lives as long as the environment: open it before the baseline.
    link().close()
    const before = fdTable()
    const peer = createUdpLink({ receive: false })
    const peerPort = peer.address().port
    for (let i = 0; i < 200; i++) {
      const kind = i % 8
      if (kind === 0) createUdpLink({ rxSlots: 16 }).close()
      else if (kind === 1) createUdpLink({ receive: false }).close()
      else if (kind === 2) createUdpLink({ rxSlots: 16, connect: { address: '127.0.0.1', port: peerPort } }).close()
      else if (kind === 3) createUdpLink({ rxSlots: 16, reuseAddr: true, reusePort: true, txTimestamps: true }).close()
      else if (kind === 4) createUdpLink({ rxSlots: 16, signal: AbortSignal.abort() })
      else if (kind === 5) {
        const ac = new AbortController()
        createUdpLink({ rxSlots: 16, signal: ac.signal })
        ac.abort()
      } else if (kind === 6) await createUdpLink({ rxSlots: 16 })[Symbol.asyncDispose]()
      else if (hasIpv6Loopback) createUdpLink({ family: 6, rxSlots: 16 }).close()
      else createUdpLink({ rxSlots: 16 }).unref().close()
    }
    peer.close()
    expect(await leakedSince(before)).toEqual([])
  })

  it('links closed from inside their own handler leave no descriptor behind', async () => {
    link().close()
    const before = fdTable()
    const tx = createUdpLink({ receive: false })
    for (let i = 0; i < 20; i++) {
      const rx = createUdpLink({ rxSlots: 16 })
      const closed = new Promise((r) => rx.once('close', r))
      rx.onBatch(() => rx.close())
      tx.send(Buffer.from('x'), rx.address().port)
      await closed
    }
    tx.close()
    expect(await leakedSince(before)).toEqual([])
  })

  it('links that fail to open in the kernel (EADDRINUSE, EADDRNOTAVAIL, ENODEV) leave no descriptor behind', async () => {
    // Each attempt gets as far as a socket() before the kernel refuses.
    const holder = link()
    const port = holder.address().port
    const away = nonLocalIpv4()
    const before = fdTable()
    let thrown = 0
    for (let i = 0; i < 100; i++) {
      const attempt: UdpLinkOptions = i % 3 === 0 ? { port } : i % 3 === 1 ? { address: away } : { device: 'onbusnodev0' }
      try {
        createUdpLink(attempt).close()
      } catch {
        thrown++
      }
    }
    expect(thrown).toBe(100)
    expect(await leakedSince(before)).toEqual([])
  })
})

describe('a whole process (child process)', () => {
  it('that opens, uses and closes links of every kind (and a worker) exits by itself, code 0', async () => {
    // Also the leak check of the sanitizer run: this child ends with a full
    // environment teardown, so LeakSanitizer sees everything that was not freed
    // (and turns the exit code non-zero).
    const r = await runFixture('udp-churn.mjs', [], { timeoutMs: 60_000 })
    expect(r.timedOut, describeExit(r)).toBe(false)
    expect(r.code, describeExit(r)).toBe(0)
    const s = r.json[0]
    expect(s, describeExit(r)).toMatchObject({ created: 250, failed: 50, received: 680, iterated: 680, workerExit: 0 })
    expect(s.errors).toEqual(['ECONNREFUSED', 'EMSGSIZE'])
  })
})

describe('an exception thrown by a handler (child process)', () => {
  // Node's rule for event callbacks: an exception nobody catches is printed
  // and the process exits with code 1; a process 'uncaughtException' handler
  // catches it and everything goes on. A native crash or a swallowed
  // exception are both failures.
  function noNativeCrash(r: Awaited<ReturnType<typeof runFixture>>): void {
    expect(r.signal, describeExit(r)).toBeNull()
    expect(r.stderr, describeExit(r)).not.toMatch(/FATAL ERROR|Segmentation|Aborted|AddressSanitizer|LeakSanitizer|runtime error:/)
  }

  it('thrown in onBatch: surfaces as uncaught (exit code 1, message printed)', async () => {
    const r = await runFixture('udp-throw.mjs', ['batch'])
    noNativeCrash(r)
    expect(r.json, describeExit(r)).not.toContainEqual({ swallowed: true })
    expect(r.code, describeExit(r)).toBe(1)
    expect(r.stderr).toMatch(/Error: boom in onBatch/)
  })

  it('thrown in a "message" listener: surfaces as uncaught (exit code 1, message printed)', async () => {
    const r = await runFixture('udp-throw.mjs', ['message'])
    noNativeCrash(r)
    expect(r.json, describeExit(r)).not.toContainEqual({ swallowed: true })
    expect(r.code, describeExit(r)).toBe(1)
    expect(r.stderr).toMatch(/Error: boom in message listener/)
  })

  it('an "error" event with no listener (ECONNREFUSED from the I/O thread) surfaces as uncaught', async () => {
    const r = await runFixture('udp-throw.mjs', ['error'])
    noNativeCrash(r)
    expect(r.json, describeExit(r)).not.toContainEqual({ swallowed: true })
    expect(r.code, describeExit(r)).toBe(1)
    expect(r.stderr).toMatch(/ECONNREFUSED/)
  })

  it("with process.on('uncaughtException') the exception is delivered there and the link keeps receiving", async () => {
    const r = await runFixture('udp-throw.mjs', ['batch-caught'])
    noNativeCrash(r)
    expect(r.code, describeExit(r)).toBe(0)
    expect(r.json, describeExit(r)).toContainEqual({ received: 3, caught: ['boom once'] })
  })
})
