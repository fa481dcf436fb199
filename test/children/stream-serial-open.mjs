// Opens a serial port once (no reconnect) and prints the error it gets as
// JSON; run as an unprivileged user to see EACCES.
import { createSerialLink } from '../../dist/lib/index.js'

const link = createSerialLink({ path: process.argv[2], baudRate: 115200, reconnect: false })
link.on('connect', () => {
  console.log(JSON.stringify({ connected: true }))
  link.close()
})
link.on('error', (err) => {
  console.log(JSON.stringify({ code: err.code, errno: err.errno, syscall: err.syscall, address: err.address, message: err.message }))
})
