/** A bounded async queue for the iterator API: the oldest entry goes (and is counted) when full. */
export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  private buf: T[] = []
  private head = 0
  private waiter: ((r: IteratorResult<T>) => void) | null = null
  private done = false
  constructor(
    private readonly hwm: number,
    private readonly onEnd: () => void,
  ) {}
  /** Returns the number of entries dropped to make room (0 or 1). */
  push(m: T): number {
    if (this.done) return 0
    if (this.waiter) {
      const w = this.waiter
      this.waiter = null
      w({ value: m, done: false })
      return 0
    }
    this.buf.push(m)
    if (this.buf.length - this.head > this.hwm) {
      this.head++
      this.compact()
      return 1
    }
    return 0
  }
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.buf.length) {
      this.buf = this.buf.slice(this.head)
      this.head = 0
    }
  }
  end(): void {
    if (this.done) return
    this.done = true
    this.onEnd()
    if (this.waiter) {
      const w = this.waiter
      this.waiter = null
      w({ value: undefined, done: true })
    }
  }
  next(): Promise<IteratorResult<T>> {
    if (this.head < this.buf.length) {
      const value = this.buf[this.head++]
      this.compact()
      return Promise.resolve({ value, done: false })
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve) => (this.waiter = resolve))
  }
  return(): Promise<IteratorResult<T>> {
    this.end()
    this.buf = []
    this.head = 0
    return Promise.resolve({ value: undefined, done: true })
  }
  [Symbol.asyncIterator](): this {
    return this
  }
}
