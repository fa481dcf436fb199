/**
 * A recorder killed with SIGKILL leaves a file that @mcap/core's streaming
 * reader reads up to its last complete chunk, every message intact; replay
 * falls back to the streaming reader for it; recoverFile() rewrites it into
 * a fully indexed file with the same messages.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { McapIndexedReader, McapStreamReader, type McapTypes } from '@mcap/core'
import { createBus, qosProfiles, rawCodec } from '../lib/bus/index.js'
import { recoverFile, replayFile } from '../lib/record/index.js'
import { decompressHandlers, FileReadable } from '../lib/record/io.js'

const child = fileURLToPath(new URL('./children/record-kill.mjs', import.meta.url))
const built = existsSync(fileURLToPath(new URL('../dist/lib/record/index.js', import.meta.url)))
if (!built) console.warn('skipping: dist/lib/record is not built (npm run build:ts)')

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onbus-crash-'))
})
afterEach(() => {
  rmSync(dir, { recursive: true, force: true })
})

function payload(topic: string, seq: number): Uint8Array {
  const n = 50 + (seq % 200)
  const out = new Uint8Array(n)
  const t = topic === 'a' ? 7 : 13
  for (let k = 0; k < n; k++) out[k] = (seq * t + k) & 0xff
  return out
}

/** Runs the child until it reports `chunks` chunks, then SIGKILLs it. */
function recordAndKill(path: string, compression: string, chunks: number): Promise<{ reported: number; signal: string | null; writer: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, path, compression], { stdio: ['ignore', 'pipe', 'inherit'] })
    let reported = 0
    let writer = ''
    let buf = ''
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000)
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString()
      let i
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i)
        buf = buf.slice(i + 1)
        const m = JSON.parse(line) as { chunks: number; writer: string }
        reported = Math.max(reported, m.chunks)
        writer = m.writer
        if (reported >= chunks) p.kill('SIGKILL') // mid-stream: it is publishing and writing right now
      }
    })
    p.on('error', reject)
    p.on('exit', (_code, signal) => {
      clearTimeout(timer)
      resolve({ reported, signal, writer })
    })
  })
}

async function streamAll(path: string) {
  const r = new McapStreamReader({ decompressHandlers: await decompressHandlers() })
  r.append(await readFile(path))
  const recs: McapTypes.TypedMcapRecord[] = []
  let error: Error | null = null
  try {
    for (let rec; (rec = r.nextRecord()); ) recs.push(rec)
  } catch (err) {
    error = err as Error
  }
  return { recs, done: r.done(), error, remaining: r.bytesRemaining() }
}

function checkMessages(recs: McapTypes.TypedMcapRecord[]): number {
  const channels = new Map<number, string>()
  let n = 0
  const lastSeq = new Map<string, number>()
  for (const rec of recs) {
    if (rec.type === 'Channel') channels.set(rec.id, rec.topic)
    if (rec.type !== 'Message') continue
    const topic = channels.get(rec.channelId)
    expect(topic).toBeDefined()
    expect(Buffer.from(rec.data).equals(Buffer.from(payload(topic!, rec.sequence)))).toBe(true)
    // No gaps: nothing was dropped (the queue is large) and nothing lost inside the complete chunks.
    expect(rec.sequence).toBe((lastSeq.get(topic!) ?? 0) + 1)
    lastSeq.set(topic!, rec.sequence)
    n++
  }
  return n
}

describe.skipIf(!built)('recorder killed with SIGKILL', () => {
  it('during a quiet stretch after a time flush: the file is complete and indexed', async () => {
    const path = join(dir, 'quiet.mcap')
    const p = spawn(process.execPath, [child, path, 'zstd', 'quiet'], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    const flushed = new Promise<Record<string, unknown>>((resolve) =>
      p.stdout.on('data', (d: Buffer) => {
        out += d.toString()
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]))
      }),
    )
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000)
    const report = await flushed
    p.kill('SIGKILL')
    await new Promise((r) => p.on('exit', r))
    clearTimeout(timer)
    expect(report.writer).toBe('worker')
    const readable = await FileReadable.open(path)
    const reader = await McapIndexedReader.Initialize({ readable, decompressHandlers: await decompressHandlers() })
    const msgs: McapTypes.TypedMcapRecord[] = []
    for await (const m of reader.readMessages()) msgs.push({ ...m, type: 'Message' } as McapTypes.TypedMcapRecord)
    await readable.close()
    expect(Number(reader.statistics!.messageCount)).toBe(10)
    const channels = [...reader.channelsById.values()].map((c) => ({ ...c, type: 'Channel' }) as McapTypes.TypedMcapRecord)
    expect(checkMessages([...channels, ...msgs])).toBe(10)
  }, 60_000)

  for (const compression of ['zstd', 'none']) {
    it(`leaves a file readable up to its last complete chunk (${compression}); recoverFile() indexes it`, async () => {
      const path = join(dir, `killed-${compression}.mcap`)
      const { reported, signal, writer } = await recordAndKill(path, compression, 6)
      expect(signal).toBe('SIGKILL')
      // Killed with its writer thread mid-work (the compiled recorder runs McapWriter in a worker).
      expect(writer).toBe('worker')
      expect(reported).toBeGreaterThanOrEqual(6)

      const { recs, done, error } = await streamAll(path)
      expect(error).toBeNull() // a torn tail is "not enough data yet", never an error
      expect(done).toBe(false) // no footer: the process never closed it
      const chunks = recs.filter((r) => r.type === 'Chunk').length
      // includeChunks is off, so count via messages: at least every chunk reported before the kill.
      const n = checkMessages(recs)
      expect(chunks).toBe(0)
      expect(n).toBeGreaterThan(0)
      // With includeChunks, the same reader shows the complete chunks.
      const r2 = new McapStreamReader({ includeChunks: true, decompressHandlers: await decompressHandlers() })
      r2.append(await readFile(path))
      let nChunks = 0
      for (let rec; (rec = r2.nextRecord()); ) if (rec.type === 'Chunk') nChunks++
      // stats().chunks counts a chunk when its write starts: the last one reported may be the torn one.
      expect(nChunks).toBeGreaterThanOrEqual(reported - 1)

      // The indexed reader refuses it (no footer), replay falls back to streaming.
      const readable = await FileReadable.open(path)
      await expect(McapIndexedReader.Initialize({ readable, decompressHandlers: await decompressHandlers() })).rejects.toThrow()
      await readable.close()
      const bus = createBus({ name: 'crash-replay' })
      let got = 0
      bus.topic('a', { qos: qosProfiles.sensorData, codec: rawCodec }).subscribe(() => void got++)
      bus.topic('b', { qos: qosProfiles.sensorData, codec: rawCodec }).subscribe(() => void got++)
      const rp = await replayFile({ bus, path, rate: 1000 })
      expect(rp.reader).toBe('streaming')
      const sum = await rp.done
      bus.close()
      expect(sum.messages).toBe(n)
      expect(got).toBe(n)

      // Recovery: a fully indexed file with the same messages.
      const fixed = join(dir, `fixed-${compression}.mcap`)
      const rs = await recoverFile(path, fixed)
      expect(rs.complete).toBe(false)
      expect(rs.messages).toBe(n)
      expect(rs.validBytes).toBeLessThanOrEqual(statSync(path).size)
      const fr = await FileReadable.open(fixed)
      const reader = await McapIndexedReader.Initialize({ readable: fr, decompressHandlers: await decompressHandlers() })
      expect(Number(reader.statistics!.messageCount)).toBe(n)
      const again: McapTypes.TypedMcapRecord[] = []
      for await (const m of reader.readMessages()) again.push({ ...m, type: 'Message' } as McapTypes.TypedMcapRecord)
      await fr.close()
      // Same messages (indexed order is log_time order, which is publish order here per topic).
      const channels = [...reader.channelsById.values()].map((c) => ({ ...c, type: 'Channel' }) as McapTypes.TypedMcapRecord)
      const byTopic = (topic: string) => again.filter((m) => m.type === 'Message' && reader.channelsById.get(m.channelId)!.topic === topic)
      expect(checkMessages([...channels, ...byTopic('a'), ...byTopic('b')])).toBe(n)
    }, 90_000)
  }
})
