/**
 * Shared-memory rings for large messages (publisher side) and their mapped
 * read-only views (subscriber side).
 *
 * Layout of a ring's memfd: one 4 KiB header page holding a uint32
 * generation per slot, then `slots` slots of `slotSize` bytes (a multiple of
 * 4 KiB). The publisher bumps a slot's generation each time it reuses it and
 * says which generation a message is in; a subscriber that finds another
 * generation in the header knows the slot was reclaimed (it stalled) and drops
 * the message instead of reading someone else's frame.
 *
 * Slot states (publisher's memory only, never trusted from the shared page):
 * free → loaned (a writer holds it) → published (holders: peers that have not
 * released it) → free when the last holder released it, when its holders died,
 * or when they held it longer than the stall timeout.
 * @internal
 */
import { ipcNative } from '../../../bindings/index.js'
import { errnoException } from '../../errors.js'

export const RING_HEADER = 4096
const FREE = 0
const LOANED = 1
const PUBLISHED = 2

export class ShmRing<P> {
  readonly fd: number
  readonly ab: ArrayBuffer
  readonly size: number
  readonly gens: Uint32Array
  private readonly state: Uint8Array
  private readonly since: Float64Array
  private readonly holders: Set<P>[] = []
  /** The view handed out for a slot's current use (identity tells a reused slot from a replay). */
  private readonly current: (Uint8Array | null)[] = []
  /** A slot's publish() is running (local subscribers may still read it). */
  private readonly busy: Uint8Array
  private cursor = 0

  constructor(
    readonly id: number,
    readonly slots: number,
    readonly slotSize: number,
  ) {
    this.size = RING_HEADER + slots * slotSize
    const fd = ipcNative.IpcSocket.memfdCreate(`onbus-ring-${process.pid}-${id}`, this.size)
    if (fd < 0) throw errnoException(fd, 'memfd_create')
    const ab = ipcNative.IpcSocket.map(fd, this.size, true)
    if (typeof ab === 'number') {
      ipcNative.IpcSocket.closeFd(fd)
      throw errnoException(ab, 'mmap')
    }
    this.fd = fd
    this.ab = ab
    this.gens = new Uint32Array(ab, 0, slots)
    this.state = new Uint8Array(slots)
    this.busy = new Uint8Array(slots)
    this.since = new Float64Array(slots)
    for (let i = 0; i < slots; i++) {
      this.holders.push(new Set())
      this.current.push(null)
    }
  }

  /** The slot a view points into, or -1 (not ours). */
  slotOf(bytes: Uint8Array): number {
    if (bytes.buffer !== this.ab) return -1
    const i = Math.floor((bytes.byteOffset - RING_HEADER) / this.slotSize)
    return i >= 0 && i < this.slots ? i : -1
  }

  /** A free slot, loaned to the caller with a fresh generation; -1 when none is free. */
  take(size: number): number {
    if (size > this.slotSize) return -1
    for (let k = 0; k < this.slots; k++) {
      const i = (this.cursor + k) % this.slots
      if (this.state[i] !== FREE) continue
      this.cursor = (i + 1) % this.slots
      this.state[i] = LOANED
      this.gens[i] = (this.gens[i] + 1) >>> 0
      const view = new Uint8Array(this.ab, RING_HEADER + i * this.slotSize, size)
      this.current[i] = view
      return i
    }
    return -1
  }

  view(i: number): Uint8Array {
    return this.current[i]!
  }

  /** Whether `bytes` is the live use of slot i (not a view of an earlier use whose slot was reused). */
  isCurrent(i: number, bytes: Uint8Array): boolean {
    return this.current[i] === bytes
  }

  beginPublish(i: number): void {
    this.state[i] = PUBLISHED
    this.busy[i] = 1
    this.since[i] = performance.now()
  }

  endPublish(i: number): void {
    this.busy[i] = 0
    this.maybeFree(i)
  }

  /** A peer takes slot i (its message is on the way to it). A freed but not reused slot is taken back. */
  hold(i: number, peer: P): void {
    if (this.state[i] === FREE) this.state[i] = PUBLISHED
    if (this.holders[i].size === 0) this.since[i] = performance.now()
    this.holders[i].add(peer)
  }

  /** A peer released slot i of generation gen. Stale releases (reclaimed slots) are ignored. */
  release(i: number, gen: number, peer: P): void {
    if (i >= this.slots || this.gens[i] !== gen) return
    if (this.holders[i].delete(peer)) this.maybeFree(i)
  }

  /** Give back a loan that was not published. */
  cancel(i: number): void {
    if (this.state[i] !== LOANED) return
    this.state[i] = FREE
    this.current[i] = null
  }

  private maybeFree(i: number): void {
    if (this.state[i] === PUBLISHED && this.busy[i] === 0 && this.holders[i].size === 0) this.state[i] = FREE
  }

  /** Every slot `peer` holds is reclaimed (it died). Returns how many. */
  dropHolder(peer: P): number {
    let n = 0
    for (let i = 0; i < this.slots; i++) {
      if (this.holders[i].delete(peer)) {
        n++
        this.maybeFree(i)
      }
    }
    return n
  }

  /** Holders of a slot held longer than `ms` lose every slot they hold (one report per stall, not one per slot); returns the count per holder. */
  reclaimStale(ms: number): Map<P, number> {
    const stale = new Set<P>()
    const now = performance.now()
    for (let i = 0; i < this.slots; i++) {
      if (this.state[i] !== PUBLISHED || this.holders[i].size === 0 || now - this.since[i] < ms) continue
      for (const p of this.holders[i]) stale.add(p)
    }
    const out = new Map<P, number>()
    for (const p of stale) out.set(p, this.dropHolder(p))
    return out
  }

  /** Free slots now. */
  free(): number {
    let n = 0
    for (let i = 0; i < this.slots; i++) if (this.state[i] === FREE) n++
    return n
  }

  close(): void {
    ipcNative.IpcSocket.closeFd(this.fd)
  }
}

/** A peer's ring as this process sees it: a read-only mapping. */
export class MappedRing {
  readonly gens: Uint32Array
  constructor(
    readonly ab: ArrayBuffer,
    readonly slots: number,
    readonly slotSize: number,
  ) {
    this.gens = new Uint32Array(ab, 0, slots)
  }
  /** A view of a message, or null when the slot is of another generation (reclaimed) or out of range. */
  view(slot: number, gen: number, len: number): Uint8Array | null {
    if (slot >= this.slots || len > this.slotSize || this.gens[slot] !== gen) return null
    return new Uint8Array(this.ab, RING_HEADER + slot * this.slotSize, len)
  }
}

/** Maps a ring descriptor received from a peer (read-only), after checking its size and seals. Closes the descriptor. */
export function mapPeerRing(fd: number, slots: number, slotSize: number): MappedRing | Error {
  try {
    const size = RING_HEADER + slots * slotSize
    const info = ipcNative.IpcSocket.fdInfo(fd)
    if (typeof info === 'number') return errnoException(info, 'fstat')
    const [st, seals, uid, mode] = info
    // F_SEAL_SHRINK (2) | F_SEAL_GROW (4): the file cannot be cut under us (SIGBUS).
    if (st < size || (seals & 6) !== 6 || uid !== process.geteuid!() || (mode & 0o077) !== 0)
      return new Error(`ring rejected: size ${st}/${size}, seals ${seals}, uid ${uid}, mode ${mode.toString(8)}`)
    const ab = ipcNative.IpcSocket.map(fd, size, false)
    if (typeof ab === 'number') return errnoException(ab, 'mmap')
    return new MappedRing(ab, slots, slotSize)
  } finally {
    ipcNative.IpcSocket.closeFd(fd)
  }
}
