/**
 * File-descriptor accounting for leak tests: a snapshot of /proc/self/fd with
 * what each descriptor points at, so a failure names the leaked sockets
 * instead of printing two numbers.
 */
import { readdirSync, readlinkSync } from 'node:fs'

/** fd number → link target (`socket:[123]`, `anon_inode:[eventpoll]`, a path). */
export type FdTable = Map<number, string>

/** The descriptors open in this process now. */
export function fdTable(): FdTable {
  const table: FdTable = new Map()
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      table.set(Number(name), readlinkSync(`/proc/self/fd/${name}`))
    } catch {
      // The descriptor readdir itself used, closed again by now.
    }
  }
  return table
}

/** Number of open descriptors. */
export function countFds(): number {
  return fdTable().size
}

/** Descriptors open in `after` that were not open (to the same thing) in `before`, as `"fd -> target"`. */
export function newFds(before: FdTable, after: FdTable = fdTable()): string[] {
  const out: string[] = []
  for (const [fd, target] of after) if (before.get(fd) !== target) out.push(`${fd} -> ${target}`)
  return out
}

/**
 * Waits (up to `timeoutMs`) until no descriptor beyond `before` is open, and
 * returns what is still open then (empty when nothing leaked). Closing is
 * synchronous in onbus, but a worker thread's teardown finishes on its own
 * thread, so a short grace period keeps the test honest without making it flaky.
 */
export async function leakedSince(before: FdTable, timeoutMs = 2000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const leaked = newFds(before)
    if (leaked.length === 0 || Date.now() >= deadline) return leaked
    await new Promise((r) => setTimeout(r, 25))
  }
}
