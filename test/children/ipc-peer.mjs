// A bus in another process for the cross-process transport tests:
//   node ipc-peer.mjs <dir> <mode> [n]
// It joins the runtime directory <dir>, subscribes to 'small' (JSON, reliable)
// and 'frames' (raw, best effort), echoes every small message on 'echo', and
// prints one JSON line per event: {"ev":"peer"}, {"ev":"small",...},
// {"ev":"frame",...}. Modes: 'sub' (runs until killed or told to stop by a
// {"stop":true} small message), 'stall' (after n frames, blocks its event
// loop inside the frame callback forever: the slot it reads is never
// released), 'pub' (publishes n small messages on 'fromchild' once a peer
// subscribes, then waits).
import { createBus, createIpcTransport, jsonCodec, rawCodec, qosProfiles } from '../../dist/lib/index.js'

const [dir, mode, nArg] = process.argv.slice(2)
const n = Number(nArg ?? 0)
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')

const bus = createBus({ name: `child-${process.pid}` })
const ipc = createIpcTransport({ dir, stallTimeoutMs: 300 })
ipc.on('peer', (e) => out({ ev: 'peer', pid: e.pid }))
ipc.on('peer-lost', (e) => out({ ev: 'peer-lost', pid: e.pid }))
ipc.on('error', (e) => out({ ev: 'error', message: String(e && e.message) }))
bus.addTransport(ipc)

const small = bus.topic('small', { qos: qosProfiles.reliable, codec: jsonCodec() })
const echo = bus.topic('echo', { qos: qosProfiles.reliable, codec: jsonCodec() })
const frames = bus.topic('frames', { qos: { ...qosProfiles.sensorData, depth: 4 }, codec: rawCodec })
const echoPub = echo.publisher({ name: 'echoer' })

small.subscribe((v, meta) => {
  // `pad` (bulk for back-pressure tests) is not echoed to stdout.
  const { pad, ...shown } = v ?? {}
  out({ ev: 'small', v: shown, seq: meta.seq, source: meta.source, padded: typeof pad === 'string' ? pad.length : 0 })
  echoPub.publish({ back: v })
  if (v && v.stop) {
    bus.close()
    ipc.close()
  }
})

let frameCount = 0
frames.subscribe((bytes, meta) => {
  frameCount++
  const len = bytes.length
  // Every byte of frame k is k & 0xff: read a few, and the whole frame's sum for small ones.
  const ok = bytes[0] === (meta.seq & 0xff) && bytes[len - 1] === (meta.seq & 0xff) && bytes[len >> 1] === (meta.seq & 0xff)
  out({ ev: 'frame', seq: meta.seq, len, ok, shared: bytes.buffer.byteLength !== len })
  if (mode === 'stall' && frameCount >= n) {
    out({ ev: 'stalling' })
    for (;;) {
      // Blocks the event loop with the slot unreleased, as a hung perception step would.
    }
  }
})

if (mode === 'pub') {
  const t = bus.topic('fromchild', { qos: qosProfiles.reliable, codec: jsonCodec() })
  const p = t.publisher({ name: 'childpub' })
  p.on('matched', async () => {
    for (let i = 0; i < n; i++) await p.publishAsync({ i })
    out({ ev: 'published', n })
  })
}
out({ ev: 'ready', pid: process.pid, id: ipc.id })
