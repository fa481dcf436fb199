/**
 * The simulators of the default vehicle: the autopilot (docs/SIMULATOR.md),
 * the RTP camera (docs/VIDEO.md) and the VLP-16 LiDAR (docs/CLI.md).
 * @example
 * import { SimAutopilot } from 'onbus/sim'
 * const sim = new SimAutopilot(port, { signing, flavour: 'px4', clockDriftPpm: 200 })
 * @packageDocumentation
 */
import '../mavlink/index.js' // the common dialect as the parsers' default
export { SimAutopilot, SIM_PARAMS } from './autopilot.js'
export type { SimAutopilotOptions, SimStats } from './autopilot.js'
export { startSimAutopilot } from './start.js'
export type { RunningSim, StartSimOptions } from './start.js'
export { createPtyPair, haveSocat } from './pty.js'
export type { PtyPair } from './pty.js'
export { createSimCamera, SimCamera, DEFAULT_CAMERA_CLIP } from './camera.js'
export type { SimCameraOptions } from './camera.js'
export { startSimLidar, parseVlp16Packet, VLP16_PACKET_SIZE } from './lidar.js'
export type { SimLidar, SimLidarOptions } from './lidar.js'
