/**
 * The simulated autopilot (see docs/SIMULATOR.md).
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
