/**
 * File plumbing for MCAP: a writable over a file handle (awaited writes, so
 * the writer feels the disk's back-pressure), a readable for the indexed
 * reader, and the chunk (de)compressors.
 */
import { open, type FileHandle } from 'node:fs/promises'
import { createRequire } from 'node:module'
import type { IWritable } from '@mcap/core'

const require = createRequire(import.meta.url)

interface Zstd {
  isLoaded: Promise<boolean>
  compress(buffer: Uint8Array, level?: number): Uint8Array
  decompress(buffer: Uint8Array, size: number): Uint8Array
}

let zstd: Zstd | null = null

/** Loads the zstd WebAssembly module once (it compiles asynchronously). */
export async function loadZstd(): Promise<Zstd> {
  if (!zstd) {
    const z = require('@foxglove/wasm-zstd') as Zstd
    await z.isLoaded
    zstd = z
  }
  return zstd
}

/** Chunk compressions the recorder writes. */
export type Compression = 'zstd' | 'none'

/** The `compressChunk` callback of McapWriter for `compression` (undefined: stored as is). */
export async function chunkCompressor(compression: Compression, level: number): Promise<((d: Uint8Array) => { compression: string; compressedData: Uint8Array }) | undefined> {
  if (compression === 'none') return undefined
  const z = await loadZstd()
  return (data) => ({ compression: 'zstd', compressedData: z.compress(data, level) })
}

/** Decompressors for the readers (zstd; uncompressed chunks need none). */
export async function decompressHandlers(): Promise<Record<string, (buffer: Uint8Array, decompressedSize: bigint) => Uint8Array>> {
  const z = await loadZstd()
  return { zstd: (buf, size) => z.decompress(buf, Number(size)) }
}

/**
 * A file McapWriter writes (IWritable), and can reopen for appending
 * (IReadable + ISeekableWriter: McapWriter.InitializeForAppending reads the
 * summary back, seeks to the data end and truncates). Every write is awaited
 * by McapWriter, so while the disk is slow the writer waits and the
 * recorder's bounded queue fills (and then drops, counted) instead of memory
 * growing.
 */
export class FileWritable implements IWritable {
  private pos = 0n
  /** The file's size (the end of what was written). */
  bytes = 0
  constructor(readonly fh: FileHandle) {}

  static async create(path: string): Promise<FileWritable> {
    return new FileWritable(await open(path, 'w+', 0o644))
  }

  async write(buffer: Uint8Array): Promise<void> {
    let off = 0
    const at = Number(this.pos)
    while (off < buffer.byteLength) {
      const { bytesWritten } = await this.fh.write(buffer, off, buffer.byteLength - off, at + off)
      off += bytesWritten
    }
    this.pos += BigInt(buffer.byteLength)
    if (Number(this.pos) > this.bytes) this.bytes = Number(this.pos)
  }

  position(): bigint {
    return this.pos
  }

  async seek(position: bigint): Promise<void> {
    this.pos = position
  }

  async truncate(): Promise<void> {
    await this.fh.truncate(Number(this.pos))
    this.bytes = Number(this.pos)
  }

  async size(): Promise<bigint> {
    return BigInt(this.bytes)
  }

  async read(offset: bigint, size: bigint): Promise<Uint8Array> {
    const n = Number(size)
    const buf = new Uint8Array(n)
    let got = 0
    while (got < n) {
      const { bytesRead } = await this.fh.read(buf, got, n - got, Number(offset) + got)
      if (bytesRead === 0) throw new RangeError(`read past the end of the file at ${Number(offset) + got}`)
      got += bytesRead
    }
    return buf
  }

  async close(): Promise<void> {
    await this.fh.close()
  }
}

/** An IReadable over a file, for McapIndexedReader. */
export class FileReadable {
  private constructor(
    private readonly fh: FileHandle,
    private readonly length: bigint,
  ) {}

  static async open(path: string): Promise<FileReadable> {
    const fh = await open(path, 'r')
    const st = await fh.stat()
    return new FileReadable(fh, BigInt(st.size))
  }

  async size(): Promise<bigint> {
    return this.length
  }

  async read(offset: bigint, size: bigint): Promise<Uint8Array> {
    const n = Number(size)
    const buf = new Uint8Array(n)
    let got = 0
    while (got < n) {
      const { bytesRead } = await this.fh.read(buf, got, n - got, Number(offset) + got)
      if (bytesRead === 0) throw new RangeError(`read past the end of the file at ${Number(offset) + got}`)
      got += bytesRead
    }
    return buf
  }

  async close(): Promise<void> {
    await this.fh.close()
  }
}
