/**
 * The router's lifecycle in child processes (they exit normally, so the
 * sanitizer run's leak check sees them): a dropped router keeps routing
 * through garbage collection, close() inside a port listener, and exit with a
 * router still open.
 */
import { describe, expect, it } from 'vitest'
import { describeExit, runFixture } from './helpers/child.js'

describe('MAVLink router lifecycle', () => {
  it('routes after its object is garbage collected, closes from a listener, and exits with a router open', async () => {
    const r = await runFixture('router-lifecycle.mjs', [], { nodeArgs: ['--expose-gc'], timeoutMs: 60_000 })
    expect(r.code, describeExit(r)).toBe(0)
    expect(r.json).toEqual([{ routedAfterGc: 3 }, { callsBeforeClose: 1 }, { done: true }])
  })
})
