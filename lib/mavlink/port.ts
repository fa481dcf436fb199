/**
 * The one interface MAVLink services talk through.
 *
 * A port is anything that carries MAVLink frames for one local system: a
 * MAVLink link on a serial/UDP/TCP onbus link, the router's local endpoint,
 * or a test double. The microservices (heartbeat, command, parameters,
 * timesync, mission) and the simulated autopilot depend only on this, so they
 * run unchanged on every transport.
 */
import type { MavlinkFrame } from './frame.js'

export type MavlinkFrameListener = (frame: MavlinkFrame, rxTimeNs: bigint) => void

export interface MavlinkPort {
  /**
   * Sends one encoded frame (from {@link MavlinkEncoder}: already signed when
   * the encoder signs). Returns false when the frame was queued behind
   * back-pressure, as a stream write does; a frame that cannot be sent at all
   * is counted by the port and reported through its 'error'/stats, never
   * thrown at the caller of a periodic service.
   */
  send(frame: Uint8Array): boolean
  /**
   * Calls `listener` for every accepted frame, synchronously from the
   * receive path. The frame object and its views are valid only during the
   * call (`frame.clone()` to keep one). `rxTimeNs` is the kernel receive
   * time (CLOCK_REALTIME ns) when the transport has one, else the time the
   * bytes reached the process. Returns a function that unsubscribes.
   */
  onFrame(listener: MavlinkFrameListener): () => void
}
