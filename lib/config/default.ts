/**
 * The embedded default configuration: the simulated vehicle on loopback.
 *
 * - a simulated VLP-16 LiDAR streams to the `lidar` UDP link (port 2368,
 *   the sensor's default), which feeds the `sensors/lidar` topic;
 * - that topic is sent on to the perception module's port (2369) through the
 *   send-only `lidar-out` link, so perception gets the packets as from the
 *   sensor, with the daemon's stats in between (perception names its own
 *   topic `lidar/packets`: a different name, or the bus would connect the two
 *   and the packets would go round in a loop);
 * - perception and planning run in their own processes over the
 *   cross-process bus (examples/perception-planning);
 * - the simulated autopilot (MAVLink with signing) and the simulated RTP
 *   camera are listed under `sim:` and start when this build has them.
 *
 * `ONBUS_SIM_LIDAR_PORT` moves the two LiDAR ports (port, port + 1), so that
 * tests and a second instance do not collide.
 */
import type { OnbusConfig } from './load.js'

/** The default configuration, as `onbus run --print-default` shows it. */
export function defaultConfig(env: NodeJS.ProcessEnv = process.env): OnbusConfig {
  const lidarPort = Number(env.ONBUS_SIM_LIDAR_PORT) || 2368
  return {
    version: 1,
    stats: { topic: '/onbus/stats', intervalMs: 1000 },
    links: {
      lidar: { kind: 'udp', address: '127.0.0.1', port: lidarPort, maxDatagramSize: 1280, rxSlots: 8192 },
      'lidar-out': { kind: 'udp', address: '127.0.0.1', port: 0, receive: false },
    },
    topics: {
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
      lidar: { port: lidarPort, rpm: 600, returnMode: 'strongest' },
      autopilot: { port: 14550, systemId: 1, signing: true },
      camera: { port: 5600, width: 1280, height: 720, fps: 30 },
    },
  }
}
