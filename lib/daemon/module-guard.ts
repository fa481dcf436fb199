/**
 * Preloaded (`NODE_OPTIONS=--import …`) into the Node module processes the
 * daemon starts: when the daemon goes away without stopping them (SIGKILL, a
 * crash), the module gets SIGTERM, so that it shuts down its own way instead
 * of running on as an orphan. Linux re-parents an orphan; the guard notices
 * the parent change within a second. Timer unref'd: it keeps nothing alive.
 */
const parent = Number(process.env.ONBUS_DAEMON_PID)
if (parent > 0 && process.ppid === parent) {
  setInterval(() => {
    if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM')
  }, 1000).unref()
}
export {}
