// Run as another user by test/bus-ipc-permissions.test.ts: tries what a
// process of another uid might try against a bus's runtime directory, with
// the addon's own calls, and prints one JSON line per attempt.
//   node ipc-intruder.mjs <dir> <socket path> <owner pid> <ring fd>
import { readdirSync, openSync } from 'node:fs'
import { ipcNative } from '../../dist/bindings/index.js'

const [dir, path, ownerPid, ringFd] = process.argv.slice(2)
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const code = (f) => {
  try {
    f()
    return 'ok'
  } catch (e) {
    return e.code
  }
}
out({ ev: 'readdir', code: code(() => readdirSync(dir)) })
out({ ev: 'open-ring', code: code(() => openSync(`/proc/${ownerPid}/fd/${ringFd}`, 'r')) })
const s = new ipcNative.IpcSocket(() => {}, () => {})
const [rc, pid, uid] = s.connect(path)
out({ ev: 'connect', rc, pid, uid })
s.close()
