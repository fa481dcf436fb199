/** Addresses for tests that must not reach any real network. */
import { networkInterfaces } from 'node:os'

function localAddresses(): Set<string> {
  const s = new Set<string>()
  for (const ifs of Object.values(networkInterfaces())) for (const i of ifs ?? []) s.add(i.address)
  return s
}

/** True when `::1` is configured (IPv6 enabled on loopback). */
export const hasIpv6Loopback = localAddresses().has('::1')

/**
 * A documentation address (RFC 5737 TEST-NET-1/2/3) that is not assigned to
 * this host, so binding it fails with EADDRNOTAVAIL. (Some sandboxes number
 * their own interface from TEST-NET-1, hence the choice.)
 */
export function nonLocalIpv4(): string {
  const local = localAddresses()
  const pick = ['192.0.2.1', '198.51.100.1', '203.0.113.1', '192.0.2.254'].find((a) => !local.has(a))
  if (!pick) throw new Error('every TEST-NET candidate address is assigned to this host')
  return pick
}

/** A documentation IPv6 address (RFC 3849) not assigned to this host. */
export function nonLocalIpv6(): string {
  const local = localAddresses()
  const pick = ['2001:db8::1', '2001:db8::2'].find((a) => !local.has(a))
  if (!pick) throw new Error('every 2001:db8:: candidate address is assigned to this host')
  return pick
}
