/**
 * Whether `room` matches one of the patterns: exact ids, or a trailing `*` for a prefix
 * (`team.*` matches `team.eu`). Nothing else is special, so a room id can never widen
 * what a pattern grants.
 */
export function roomAllowed(patterns: readonly string[] | undefined, room: string): boolean {
  if (patterns === undefined) return true;
  return patterns.some((pattern) => (pattern.endsWith('*') ? room.startsWith(pattern.slice(0, -1)) : room === pattern));
}
