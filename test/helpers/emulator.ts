/**
 * What the emulator the suite runs under (scripts/qemu.mjs sets
 * ONBUS_EMULATOR) cannot do, so tests can skip naming the emulator's limit.
 * Each entry was observed with `qemu-aarch64 -d unimp` / scripts/qemu-probe.c
 * on Debian 12's qemu-user 7.2.
 */
export const emulator = process.env.ONBUS_EMULATOR

const LIMITS: Record<string, string> = {
  timestamping: 'does not implement SO_TIMESTAMPING (setsockopt level=1 optname=37/65): no kernel timestamps',
  rxqOvfl: 'does not implement SO_RXQ_OVFL (optname 40): the kernel drop counter is unavailable',
  multicast: 'does not implement IP_MULTICAST_IF / MCAST_JOIN_GROUP / IPV6_MULTICAST_IF',
  termios2: 'does not implement the TCGETS2/TCSETS2 ioctls serialport uses for baud rates',
  speed: 'runs too slowly for this timing-bound test (emulated child start-up ~2 s, sender below the required rate)',
}

/** The reason to skip under the current emulator, or undefined when running natively. */
export function emulatorLimit(feature: keyof typeof LIMITS | string): string | undefined {
  if (!emulator) return undefined
  const why = LIMITS[feature]
  return why ? `${emulator} ${why}` : undefined
}

/** Logs and returns true when a test must skip under the emulator. */
export function skipUnderEmulator(feature: string): boolean {
  const why = emulatorLimit(feature)
  if (why) console.warn(`skipping: ${why}`)
  return why !== undefined
}
