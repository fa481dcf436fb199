/**
 * Ties an object's close (or abort) to an AbortSignal: `onAbort` runs once
 * when the signal aborts. A signal that has already aborted runs it through
 * `defer` (process.nextTick, queueMicrotask) or, without one, at once.
 * Returns the function that detaches the listener (call it on close).
 */
export function whenAborted(signal: AbortSignal | undefined, onAbort: () => void, defer?: (fn: () => void) => void): () => void {
  if (!signal) return noop
  if (signal.aborted) {
    if (defer) defer(onAbort)
    else onAbort()
    return noop
  }
  signal.addEventListener('abort', onAbort, { once: true })
  return () => signal.removeEventListener('abort', onAbort)
}

function noop(): void {}
