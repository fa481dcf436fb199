// A publisher in another process for the recorder's IPC test:
//   node record-ipc-pub.mjs <dir> <n>
// Declares 'ipc/raw' (raw, 64 B), 'ipc/big' (raw, 64 KiB: through shared
// memory) and 'ipc/json'; when the recorder's subscription has matched all
// three, publishes n messages on each (payloads derived from the sequence)
// and prints {"ev":"published"}; exits when stdin closes.
import { createBus, createIpcTransport, jsonCodec, rawCodec, qosProfiles } from '../../dist/lib/index.js'

const [dir, nArg] = process.argv.slice(2)
const n = Number(nArg)
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const bus = createBus({ name: 'ipc-pub' })
const ipc = createIpcTransport({ dir })
bus.addTransport(ipc)
const raw = bus.topic('ipc/raw', { qos: qosProfiles.reliable, codec: rawCodec }).publisher({ name: 'raw' })
const big = bus.topic('ipc/big', { qos: qosProfiles.reliable, codec: rawCodec }).publisher({ name: 'big' })
const json = bus.topic('ipc/json', { qos: qosProfiles.reliable, codec: jsonCodec() }).publisher({ name: 'json' })
let matched = 0
for (const p of [raw, big, json]) p.once('matched', () => void (++matched === 3 && run()))
async function run() {
  for (let i = 1; i <= n; i++) {
    await raw.publishAsync(new Uint8Array(64).fill(i & 0xff))
    // Large messages through a loaned shared-memory slot (waits for a free one, as a camera would).
    const loan = await ipc.loanAsync(64 * 1024)
    loan.bytes.fill((i * 3) & 0xff)
    loan.publish(big)
    await json.publishAsync({ i })
  }
  out({ ev: 'published' })
}
out({ ev: 'ready' })
process.stdin.on('end', () => {
  bus.close()
  process.exit(0)
})
process.stdin.resume()
