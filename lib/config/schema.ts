/**
 * The JSON Schema of an onbus configuration file, apart from the links'
 * options: each link kind brings its own fragment (lib/daemon/kinds.ts), so
 * the file is checked in two steps (the frame here, then every link against
 * its kind) and errors name the kind's own keys.
 */

/** A topic's QoS in a configuration: a profile name, then fields that override it. */
export const qosSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    profile: { enum: ['sensorData', 'reliable', 'state'] },
    reliability: { enum: ['best-effort', 'reliable'] },
    depth: { type: 'integer', minimum: 1, maximum: 1 << 24 },
    overflow: { enum: ['drop-oldest', 'drop-newest', 'block'] },
    durability: { enum: ['volatile', 'transient-local'] },
    deadlineMs: { type: 'number', exclusiveMinimum: 0 },
    livelinessLeaseMs: { type: 'number', exclusiveMinimum: 0 },
  },
} as const

const linkRef = { type: 'string', minLength: 1 } as const

/** The frame: version, ipc, stats, links (kind only), topics with feeds, modules, sim. */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    version: { const: 1 },
    ipc: {
      type: 'object',
      additionalProperties: false,
      properties: { dir: { type: 'string', minLength: 1 }, enabled: { type: 'boolean' } },
    },
    stats: {
      type: 'object',
      additionalProperties: false,
      properties: {
        topic: { type: 'string', pattern: '^[A-Za-z0-9_.\\-/]+$' },
        intervalMs: { type: 'integer', minimum: 100, maximum: 60000 },
      },
    },
    links: {
      type: 'object',
      propertyNames: { pattern: '^[A-Za-z0-9_.\\-]+$' },
      additionalProperties: {
        type: 'object',
        required: ['kind'],
        properties: { kind: { type: 'string' } },
      },
    },
    topics: {
      type: 'object',
      propertyNames: { pattern: '^[A-Za-z0-9_.\\-/]+$' },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['qos'],
        properties: {
          /**
           * raw (bytes as they are), json, mavlink (bytes, one whole MAVLink frame per message: what the recorder and
           * `onbus echo` decode), or video (whole frames with their metadata, `onbus.video-frame/1`: what an `rtp-camera` link delivers).
           */
          codec: { enum: ['raw', 'json', 'mavlink', 'video'] },
          /** What the payload is, for `onbus echo` and the recorder: `mavlink`, `video`, or anything (shown as hex). */
          type: { type: 'string', minLength: 1 },
          qos: qosSchema,
          from: { type: 'array', items: linkRef, uniqueItems: true },
          to: {
            type: 'array',
            items: {
              anyOf: [
                linkRef,
                {
                  type: 'object',
                  additionalProperties: false,
                  required: ['link'],
                  properties: {
                    link: linkRef,
                    port: { type: 'integer', minimum: 1, maximum: 65535 },
                    address: { type: 'string', minLength: 1 },
                  },
                },
              ],
            },
          },
        },
      },
    },
    modules: {
      type: 'object',
      propertyNames: { pattern: '^[A-Za-z0-9_.\\-]+$' },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['command'],
        properties: {
          command: { type: 'string', minLength: 1 },
          args: { type: 'array', items: { type: 'string' } },
          env: { type: 'object', additionalProperties: { type: 'string' } },
          cwd: { type: 'string' },
          restart: { enum: ['always', 'on-failure', 'never'] },
          restartDelayMs: { type: 'integer', minimum: 0, maximum: 600000 },
        },
      },
    },
    sim: {
      type: 'object',
      additionalProperties: false,
      properties: {
        lidar: {
          type: 'object',
          additionalProperties: false,
          required: ['port'],
          properties: {
            address: { type: 'string', minLength: 1 },
            port: { type: 'integer', minimum: 1, maximum: 65535 },
            rpm: { type: 'number', minimum: 60, maximum: 1200 },
            returnMode: { enum: ['strongest', 'last', 'dual'] },
          },
        },
        autopilot: {
          type: 'object',
          additionalProperties: false,
          required: ['port'],
          properties: {
            /** Where the simulated autopilot sends (a `mavlink` link's UDP server endpoint). */
            port: { type: 'integer', minimum: 1, maximum: 65535 },
            address: { type: 'string', minLength: 1 },
            systemId: { type: 'integer', minimum: 1, maximum: 255 },
            /** MAVLink 2 signing with a key generated at start (or read from keyFile). Default true. */
            signing: { type: 'boolean' },
            /** The signing key (32 bytes): read if it exists, else generated and written owner-only. Default `<ipc dir>/mavlink-signing.key`. */
            keyFile: { type: 'string', minLength: 1 },
            flavour: { enum: ['px4', 'ardupilot'] },
            attitudeHz: { type: 'number', minimum: 0, maximum: 1000 },
            positionHz: { type: 'number', minimum: 0, maximum: 1000 },
          },
        },
        camera: {
          type: 'object',
          additionalProperties: false,
          required: ['port'],
          properties: {
            /** Where the simulated camera sends RTP (an `rtp-camera` link's port; RTCP on port + 1). */
            port: { type: 'integer', minimum: 1, maximum: 65535 },
            address: { type: 'string', minLength: 1 },
            fps: { type: 'number', minimum: 1, maximum: 240 },
            /** Annex-B H.264/H.265 clip (default: the shipped 320×240 clip). */
            clip: { type: 'string', minLength: 1 },
          },
        },
      },
    },
  },
} as const
