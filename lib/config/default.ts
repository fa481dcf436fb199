/**
 * The embedded default configuration: the whole simulated vehicle on
 * loopback (everything binds 127.0.0.1).
 *
 * - MAVLink: the simulated autopilot (signing on; the key is generated at
 *   start and kept owner-only in the runtime directory as
 *   `mavlink-signing.key`) sends to the `autopilot` endpoint of the `mavlink`
 *   link, a native MAVLink router; the router's `gcs` endpoint is a UDP server
 *   on 127.0.0.1:14550 for a ground station; every frame routed to the
 *   companion is published on `mavlink/telemetry` (one whole frame per
 *   message, kernel receive time), and frames published on `mavlink/command`
 *   are routed to the autopilot (and the ground station);
 * - video: the simulated camera streams H.264 over RTP to the `camera` link
 *   (an RTP receiver on 5600, RTCP 5601), which publishes whole frames on
 *   `camera/front`;
 * - LiDAR: a simulated VLP-16 streams to the `lidar` UDP link (port 2368,
 *   the sensor's default), which feeds `sensors/lidar`; that topic is sent on
 *   to the perception module's port (2369) through the send-only `lidar-out`
 *   link, so perception gets the packets as from the sensor, with the
 *   daemon's stats in between (perception names its own topic
 *   `lidar/packets`: a different name, or the bus would connect the two and
 *   the packets would go round in a loop);
 * - perception and planning run in their own processes over the
 *   cross-process bus (examples/perception-planning).
 *
 * `ONBUS_SIM_LIDAR_PORT` (2368; uses port + 1 too), `ONBUS_SIM_MAVLINK_PORT`
 * (the ground station's 14550; the autopilot endpoint is port + 1) and
 * `ONBUS_SIM_CAMERA_PORT` (5600; RTCP port + 1) move the ports, so that tests
 * and a second instance do not collide.
 */
import type { OnbusConfig } from './load.js'

/** The default configuration, as `onbus run --print-default` shows it. */
export function defaultConfig(env: NodeJS.ProcessEnv = process.env): OnbusConfig {
  const lidarPort = Number(env.ONBUS_SIM_LIDAR_PORT) || 2368
  const gcsPort = Number(env.ONBUS_SIM_MAVLINK_PORT) || 14550
  const cameraPort = Number(env.ONBUS_SIM_CAMERA_PORT) || 5600
  return {
    version: 1,
    stats: { topic: '/onbus/stats', intervalMs: 1000 },
    links: {
      mavlink: {
        kind: 'mavlink',
        endpoints: [
          { kind: 'udp-server', name: 'autopilot', address: '127.0.0.1', port: gcsPort + 1 },
          { kind: 'udp-server', name: 'gcs', address: '127.0.0.1', port: gcsPort },
        ],
      },
      camera: { kind: 'rtp-camera', address: '127.0.0.1', port: cameraPort, codec: 'h264' },
      lidar: { kind: 'udp', address: '127.0.0.1', port: lidarPort, maxDatagramSize: 1280, rxSlots: 8192 },
      'lidar-out': { kind: 'udp', address: '127.0.0.1', port: 0, receive: false },
    },
    topics: {
      'mavlink/telemetry': { codec: 'mavlink', type: 'mavlink', qos: { profile: 'sensorData', depth: 256 }, from: ['mavlink'] },
      'mavlink/command': { codec: 'mavlink', type: 'mavlink', qos: { profile: 'reliable', depth: 64 }, to: ['mavlink'] },
      'camera/front': { codec: 'video', type: 'video/h264', qos: { profile: 'sensorData', depth: 8 }, from: ['camera'] },
      'sensors/lidar': {
        codec: 'raw',
        type: 'velodyne/vlp16',
        qos: { profile: 'sensorData', depth: 64, deadlineMs: 200 },
        from: ['lidar'],
        to: [{ link: 'lidar-out', port: lidarPort + 1 }],
      },
    },
    modules: {
      perception: { command: '${node}', args: ['${onbus}/dist/examples/perception-planning/perception.js', '--lidar-port', String(lidarPort + 1), '--dir', '${ipc.dir}'], restart: 'on-failure' },
      planning: { command: '${node}', args: ['${onbus}/dist/examples/perception-planning/planning.js', '--dir', '${ipc.dir}'], restart: 'on-failure' },
    },
    sim: {
      autopilot: { address: '127.0.0.1', port: gcsPort + 1, systemId: 1, signing: true },
      camera: { address: '127.0.0.1', port: cameraPort, fps: 30 },
      lidar: { port: lidarPort, rpm: 600, returnMode: 'strongest' },
    },
  }
}
