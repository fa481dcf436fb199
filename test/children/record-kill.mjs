// A recorder to be killed with SIGKILL mid-recording:
//   node record-kill.mjs <path> <compression>
// Publishes on two topics as fast as the loop allows (payloads derived from
// topic and sequence, so the parent can check every byte), and prints one
// JSON line {"chunks":n,"messages":m} each time the file has more chunks.
import { createBus, qosProfiles, rawCodec } from '../../dist/lib/index.js'
import { createRecorder } from '../../dist/lib/record/index.js'

const [path, compression, mode] = process.argv.slice(2)
const bus = createBus({ name: 'kill-me' })
const a = bus.topic('a', { qos: qosProfiles.sensorData, codec: rawCodec })
const b = bus.topic('b', { qos: qosProfiles.sensorData, codec: rawCodec })
const rec = await createRecorder({ bus, path, compression, chunkSize: 32 * 1024, flushMs: mode === 'quiet' ? 200 : 0 })
const pa = a.publisher({ name: 'pa' })
const pb = b.publisher({ name: 'pb' })

export function payload(topic, seq) {
  const n = 50 + (seq % 200)
  const out = new Uint8Array(n)
  const t = topic === 'a' ? 7 : 13
  for (let k = 0; k < n; k++) out[k] = (seq * t + k) & 0xff
  return out
}

if (mode === 'quiet') {
  // A few messages, then silence: the time flush must close the chunk (and the file) by itself.
  for (let seq = 1; seq <= 10; seq++) pa.publish(payload('a', seq))
  const poll = setInterval(() => {
    const s = rec.stats()
    if (s.flushes >= 1) {
      clearInterval(poll)
      process.stdout.write(JSON.stringify({ flushed: s.flushes, chunks: s.chunks, messages: s.messages, writer: s.writer }) + '\n')
    }
  }, 20)
}

let seq = 0
let lastChunks = 0
function burst() {
  for (let i = 0; i < 50; i++) {
    seq++
    pa.publish(payload('a', seq))
    if (seq % 2 === 0) pb.publish(payload('b', seq / 2))
  }
  const s = rec.stats()
  if (s.chunks !== lastChunks) {
    lastChunks = s.chunks
    process.stdout.write(JSON.stringify({ chunks: s.chunks, messages: s.messages, writer: s.writer }) + '\n')
  }
  setImmediate(burst)
}
if (mode !== 'quiet') burst()
