/**
 * Recovery of a recording that was cut short (SIGKILL, power loss, full
 * disk): the streaming reader takes every complete record up to the damage,
 * and a new, fully indexed file is written from them.
 */
import { open } from 'node:fs/promises'
import { McapStreamReader, McapWriter, type McapTypes } from '@mcap/core'
import { onbusError } from '../errors.js'
import { chunkCompressor, decompressHandlers, FileWritable, type Compression } from './io.js'

/** What {@link recoverFile} found and wrote. */
export interface RecoverSummary {
  input: string
  output: string
  /** Bytes of the input. */
  inputBytes: number
  /** Bytes of the input that were read as complete records; the rest was a torn tail. */
  validBytes: number
  /** The input ended with a footer (nothing to recover, rewritten anyway). */
  complete: boolean
  messages: number
  channels: number
  schemas: number
  metadata: number
  /** Why reading stopped before the end, if it did. */
  stoppedBy: string | null
}

/**
 * Rewrites `input` (possibly truncated) into `output` with chunk indexes,
 * message indexes, statistics and summary. Messages keep their channel,
 * sequence, log and publish times and bytes; schemas, channels and metadata
 * records are carried over.
 * @example
 * const s = await recoverFile('crashed.mcap', 'fixed.mcap')
 * console.log(`${s.messages} messages recovered, ${s.inputBytes - s.validBytes} bytes of torn tail dropped`)
 */
export async function recoverFile(input: string, output: string, opts: { compression?: Compression; chunkSize?: number } = {}): Promise<RecoverSummary> {
  const fh = await open(input, 'r')
  const inputBytes = (await fh.stat()).size
  const reader = new McapStreamReader({ decompressHandlers: await decompressHandlers() })
  const file = await FileWritable.create(output)
  const writer = new McapWriter({ writable: file, chunkSize: opts.chunkSize ?? 1 << 20, compressChunk: await chunkCompressor(opts.compression ?? 'zstd', 3) })
  const schemaIds = new Map<number, number>()
  const channelIds = new Map<number, number>()
  const out: RecoverSummary = { input, output, inputBytes, validBytes: 0, complete: false, messages: 0, channels: 0, schemas: 0, metadata: 0, stoppedBy: null }
  let header: McapTypes.Header | null = null
  const pending: McapTypes.TypedMcapRecord[] = []
  try {
    const buf = new Uint8Array(1 << 20)
    let fed = 0
    reading: for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, fed)
      if (bytesRead === 0) break
      fed += bytesRead
      reader.append(buf.subarray(0, bytesRead))
      for (;;) {
        let rec: McapTypes.TypedMcapRecord | undefined
        try {
          rec = reader.nextRecord()
        } catch (err) {
          out.stoppedBy = (err as Error).message
          break reading
        }
        if (!rec) break
        if (rec.type === 'Header') {
          header = rec
          await writer.start({ profile: rec.profile, library: rec.library })
          for (const p of pending) await copy(p)
          continue
        }
        if (!header) {
          pending.push(rec)
          continue
        }
        await copy(rec)
        if (reader.done()) {
          out.complete = true
          break reading
        }
      }
      out.validBytes = fed - reader.bytesRemaining()
    }
    if (!out.complete) out.validBytes = fed - reader.bytesRemaining()
    else out.validBytes = inputBytes
    if (!header) throw onbusError('ERR_ONBUS_RECOVER', `${input} has no MCAP header: nothing to recover`)
    if (!out.complete && out.stoppedBy === null && out.validBytes < inputBytes) out.stoppedBy = `torn tail: the last ${inputBytes - out.validBytes} bytes are an incomplete record`
    await writer.end()
  } finally {
    await fh.close()
    await file.close()
  }
  return out

  async function copy(rec: McapTypes.TypedMcapRecord): Promise<void> {
    switch (rec.type) {
      case 'Schema':
        if (!schemaIds.has(rec.id)) {
          schemaIds.set(rec.id, await writer.registerSchema({ name: rec.name, encoding: rec.encoding, data: rec.data }))
          out.schemas++
        }
        return
      case 'Channel':
        if (!channelIds.has(rec.id)) {
          channelIds.set(rec.id, await writer.registerChannel({ topic: rec.topic, messageEncoding: rec.messageEncoding, schemaId: rec.schemaId === 0 ? 0 : (schemaIds.get(rec.schemaId) ?? 0), metadata: rec.metadata }))
          out.channels++
        }
        return
      case 'Message': {
        const ch = channelIds.get(rec.channelId)
        if (ch === undefined) return // a message whose channel record was lost cannot be described: skipped
        await writer.addMessage({ channelId: ch, sequence: rec.sequence, logTime: rec.logTime, publishTime: rec.publishTime, data: rec.data })
        out.messages++
        return
      }
      case 'Metadata':
        await writer.addMetadata({ name: rec.name, metadata: rec.metadata })
        out.metadata++
        return
      case 'Attachment':
        await writer.addAttachment({ name: rec.name, logTime: rec.logTime, createTime: rec.createTime, mediaType: rec.mediaType, data: rec.data })
        return
      default:
        return
    }
  }
}
