/**
 * Names one room log. A room has one global log, replicated to every region, and, for
 * events of `scope: 'regional'` handlers, one log per region that never leaves it (G5).
 */
export type GeoLogRef =
  { readonly room: string; readonly scope: 'global' } | { readonly room: string; readonly scope: 'regional'; readonly region: string };

export function globalLog(room: string): GeoLogRef {
  return { room, scope: 'global' };
}

export function regionalLog(room: string, region: string): GeoLogRef {
  return { room, scope: 'regional', region };
}

/**
 * A stable string for maps and for broker names. The room id is URI-encoded and the
 * parts are joined with `|`, which encoding removes from room ids, so two different
 * logs can never share a key.
 */
export function logKey(log: GeoLogRef): string {
  const room = encodeURIComponent(log.room);
  return log.scope === 'global' ? `g|${room}` : `r|${encodeURIComponent(log.region)}|${room}`;
}
