/**
 * A bounded FIFO of messages stored column-wise in preallocated arrays, so
 * that queueing a message allocates nothing once the ring has grown to its
 * working size. It grows on demand (doubling) up to `max`, so a large `depth`
 * costs memory only when a consumer actually falls behind.
 */
import type { Publisher } from './publisher.js'

export class MessageRing {
  data: unknown[]
  seq: Float64Array
  t: Float64Array
  src: string[]
  rx: (bigint | undefined)[]
  pub: (Publisher<unknown> | null)[]
  hist: Uint8Array
  /** Index of the oldest entry. */
  head = 0
  size = 0
  cap: number
  readonly max: number

  constructor(max: number) {
    this.max = max
    this.cap = Math.min(max, 16)
    this.data = new Array(this.cap).fill(undefined)
    this.seq = new Float64Array(this.cap)
    this.t = new Float64Array(this.cap)
    this.src = new Array(this.cap).fill('')
    this.rx = new Array(this.cap).fill(undefined)
    this.pub = new Array(this.cap).fill(null)
    this.hist = new Uint8Array(this.cap)
  }

  private grow(): void {
    const cap = Math.min(this.max, this.cap * 2)
    const data = new Array(cap).fill(undefined)
    const seq = new Float64Array(cap)
    const t = new Float64Array(cap)
    const src = new Array<string>(cap).fill('')
    const rx = new Array<bigint | undefined>(cap).fill(undefined)
    const pub = new Array<Publisher<unknown> | null>(cap).fill(null)
    const hist = new Uint8Array(cap)
    for (let k = 0; k < this.size; k++) {
      const i = (this.head + k) % this.cap
      data[k] = this.data[i]
      seq[k] = this.seq[i]
      t[k] = this.t[i]
      src[k] = this.src[i]
      rx[k] = this.rx[i]
      pub[k] = this.pub[i]
      hist[k] = this.hist[i]
    }
    this.data = data
    this.seq = seq
    this.t = t
    this.src = src
    this.rx = rx
    this.pub = pub
    this.hist = hist
    this.head = 0
    this.cap = cap
  }

  /** Appends; the caller makes room first (`size < max`). */
  push(value: unknown, seq: number, t: number, src: string, rx: bigint | undefined, pub: Publisher<unknown> | null, historical: boolean): void {
    if (this.size === this.cap) this.grow()
    let i = this.head + this.size
    if (i >= this.cap) i -= this.cap
    this.data[i] = value
    this.seq[i] = seq
    this.t[i] = t
    this.src[i] = src
    this.rx[i] = rx
    this.pub[i] = pub
    this.hist[i] = historical ? 1 : 0
    this.size++
  }

  /** Slot of the k-th oldest entry. */
  at(k: number): number {
    const i = this.head + k
    return i >= this.cap ? i - this.cap : i
  }

  /** Removes the oldest entry and returns its slot; read the slot's fields before the next push. */
  shift(): number {
    const i = this.head
    this.head = i + 1 === this.cap ? 0 : i + 1
    this.size--
    return i
  }

  /** Drops references held by a slot (after reading it) so the ring does not keep messages alive. */
  release(i: number): void {
    this.data[i] = undefined
    this.rx[i] = undefined
    this.pub[i] = null
  }

  clear(): void {
    while (this.size > 0) this.release(this.shift())
    this.head = 0
  }
}
