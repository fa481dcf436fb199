/**
 * Recording over IPC: a recorder in this process records every topic that
 * another process publishes (learned from its announcements), including
 * large messages that travel through shared memory.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { McapIndexedReader } from '@mcap/core'
import { createBus, createIpcTransport } from '../lib/bus/index.js'
import { createRecorder } from '../lib/record/index.js'
import { decompressHandlers, FileReadable } from '../lib/record/io.js'

const child = fileURLToPath(new URL('./children/record-ipc-pub.mjs', import.meta.url))
const built = existsSync(fileURLToPath(new URL('../dist/lib/index.js', import.meta.url)))
if (!built) console.warn('skipping: dist/ is not built (npm run build:ts)')

const cleanup: (() => void)[] = []
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f()
})

describe.skipIf(!built)('recorder over IPC', () => {
  it('records every topic a daemon-like process publishes, bytes intact', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onbus-recipc-'))
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
    const n = 50
    const p = spawn(process.execPath, [child, dir, String(n)], { stdio: ['pipe', 'pipe', 'inherit'] })
    cleanup.push(() => p.kill('SIGKILL'))
    let published!: () => void
    const done = new Promise<void>((r) => (published = r))
    p.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('"published"')) published()
    })
    const bus = createBus({ name: 'recorder' })
    const ipc = createIpcTransport({ dir })
    bus.addTransport(ipc)
    cleanup.push(() => bus.close())
    const path = join(dir, 'ipc.mcap')
    const rec = await createRecorder({ bus, path, ipc })
    await done
    const deadline = Date.now() + 20_000
    while (rec.stats().messages + rec.stats().queued < 3 * n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    const s = await rec.close()
    p.stdin.end()
    expect(s.dropped).toBe(0)
    expect(s.topics.map((t) => t.topic).sort()).toEqual(['ipc/big', 'ipc/json', 'ipc/raw'])
    expect(s.messages).toBe(3 * n)

    const readable = await FileReadable.open(path)
    const reader = await McapIndexedReader.Initialize({ readable, decompressHandlers: await decompressHandlers() })
    const seen = { 'ipc/raw': 0, 'ipc/big': 0, 'ipc/json': 0 } as Record<string, number>
    for await (const m of reader.readMessages()) {
      const ch = reader.channelsById.get(m.channelId)!
      const i = m.sequence
      if (ch.topic === 'ipc/raw') expect(m.data.every((b) => b === (i & 0xff))).toBe(true)
      if (ch.topic === 'ipc/big') {
        expect(m.data.length).toBe(64 * 1024)
        expect(m.data.every((b) => b === ((i * 3) & 0xff))).toBe(true)
      }
      if (ch.topic === 'ipc/json') {
        expect(ch.messageEncoding).toBe('json')
        expect(JSON.parse(new TextDecoder().decode(m.data))).toEqual({ i })
      }
      // The publisher's own publish stamp crossed the process boundary.
      expect(m.publishTime).toBe(m.logTime)
      seen[ch.topic]++
    }
    await readable.close()
    expect(seen).toEqual({ 'ipc/raw': n, 'ipc/big': n, 'ipc/json': n })
  }, 60_000)
})
