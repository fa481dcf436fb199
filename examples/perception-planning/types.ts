/** What perception tells planning, ten times a second. */
export interface Obstacles {
  frame: number
  /** LiDAR packets used for this frame. */
  packets: number
  /** Distance of the nearest return, metres (toy detector). */
  nearestM: number
  /** Kernel receive time (CLOCK_REALTIME ns, as a decimal string) of the newest packet used. */
  newestRxNs: string | null
}
