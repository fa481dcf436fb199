/**
 * The recorder's writer thread: McapWriter, chunk compression and file
 * writes, off the event loop that delivers bus messages. Protocol (from
 * writer.ts): `channel`, `batch` (acknowledged with `written` once the writer
 * has taken it), `end` (answered with `ended`); any failure is sent as
 * `error`.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { WriterCore, type Batch, type ChannelSpec, type SinkOptions } from './writer.js'

type Msg = { type: 'channel'; key: number; spec: ChannelSpec } | { type: 'batch'; id: number; batch: Batch } | { type: 'end'; metadata: [string, string][] | null }

const port = parentPort!
const core = new WriterCore()

function reportError(err: unknown): void {
  const e = err as Error & { code?: string }
  port.postMessage({ type: 'error', message: e.message, code: e.code })
}

core.onFlush = () => port.postMessage({ type: 'figures', ...core.figures() })
try {
  await core.open(workerData as SinkOptions)
  port.postMessage({ type: 'opened' })
} catch (err) {
  reportError(err)
}

port.on('message', (m: Msg) => {
  if (m.type === 'channel') core.channel(m.key, m.spec)
  else if (m.type === 'batch')
    core.write(m.batch).then(
      () => port.postMessage({ type: 'written', id: m.id, ...core.figures() }),
      reportError,
    )
  else if (m.type === 'end')
    core.end(m.metadata).then(
      (f) => port.postMessage({ type: 'ended', ...f }),
      reportError,
    )
})
