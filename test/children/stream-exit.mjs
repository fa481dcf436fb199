// Lifecycle child: opens a TCP server and a connected client, then either
// exits with them open ('exit'), or unrefs them and lets the loop end
// ('unref'), or runs the same inside a worker thread that ends ('worker').
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { createTcpLink, createTcpServer } from '../../dist/lib/index.js'

const mode = isMainThread ? process.argv[2] : workerData
const fds = () => readdirSync('/proc/self/fd').length

async function openPair() {
  const server = createTcpServer({ port: 0 })
  const accepted = once(server, 'connection')
  const c = createTcpLink({ port: server.port })
  const [[peer]] = await Promise.all([accepted, once(c, 'connect')])
  return { server, c, peer }
}

if (mode === 'worker' && isMainThread) {
  // A first worker with no links, so that whatever Node creates lazily for
  // workers exists before counting.
  await once(new Worker('', { eval: true }), 'exit')
  const before = fds()
  const w = new Worker(new URL(import.meta.url), { workerData: 'in-worker' })
  const [opened] = await once(w, 'message')
  await once(w, 'exit')
  await new Promise((r) => setTimeout(r, 50))
  console.log(JSON.stringify({ before, opened, after: fds() }))
} else if (mode === 'in-worker') {
  await openPair()
  // End the worker with both links (three descriptors) still open.
  parentPort.postMessage(fds())
  process.exit(0)
} else {
  const { server, c, peer } = await openPair()
  c.write('x')
  if (mode === 'exit') {
    console.log('exiting with links open')
    process.exit(0)
  } else if (mode === 'unref') {
    server.unref()
    c.unref()
    peer.unref()
    console.log('unrefed')
  }
}
