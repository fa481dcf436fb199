/**
 * Starts the two-process example: a simulated LiDAR, the perception process
 * and the planning process, each its own Node process, sharing a private
 * runtime directory. Stop with Ctrl-C, or pass --seconds.
 *
 *   npm run example:perception-planning            # or: node dist/examples/perception-planning/run.js --seconds 5
 */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createUdpLink } from '../../lib/index.js'

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '0' }, 'lidar-port': { type: 'string', default: '23680' } } })
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url))
// A fresh owner-only runtime directory (mkdtemp makes it 0700) for this run.
const dir = mkdtempSync(join(tmpdir(), 'onbus-demo-'))
// --lidar-port 0: pick a free port now (tests use this to run side by side).
let port = values['lidar-port']!
if (port === '0') {
  const probe = createUdpLink({ port: 0, receive: false })
  port = String(probe.address().port)
  probe.close()
}
const kids: ChildProcess[] = [
  fork(here('./planning.js'), ['--dir', dir], { stdio: 'inherit' }),
  fork(here('./perception.js'), ['--dir', dir, '--lidar-port', port], { stdio: 'inherit' }),
  fork(here('../sim-sensor.js'), ['--port', port, '--rate', '5000', '--size', '1206'], { stdio: 'inherit' }),
]
console.log(`perception → planning over ${dir}; simulated LiDAR at 5,000 packets/s to 127.0.0.1:${port}`)

let stopping = false
function stop(): void {
  if (stopping) return
  stopping = true
  for (const k of kids) k.kill('SIGTERM')
  setTimeout(() => rmSync(dir, { recursive: true, force: true }), 500).unref()
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
const seconds = Number(values.seconds)
if (seconds > 0) setTimeout(stop, seconds * 1000)
