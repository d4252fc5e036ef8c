/**
 * Where a global room's log lives: its home region holds the log and orders its events;
 * every other region appends through it and reads a copy. Reported by
 * {@link GeoTransport.home} and `GET /geo/rooms/:room`.
 */
export interface GeoRoomHome {
  room: string;
  /** The region holding the room's log; `null` while the room has no home yet (nothing was appended). */
  region: string | null;
  /**
   * The fencing term of the home: 1 for the home the first append chose, one more at each
   * change. Appends check it, so two regions never both order one room. 0 while unplaced.
   */
  term: number;
  /**
   * `per-room`: each room has its own home, chosen at its first append (see
   * `GeoWsModuleOptions.placement`). `fixed`: the transport keeps every global log in one
   * place (`region` names it when the transport knows it).
   */
  placement: 'per-room' | 'fixed';
}

/**
 * Chooses the home region of a global room when its first event is appended. Called in
 * the region that appends (`region`); return one of `regions`, `undefined` for that
 * region, or `'auto'`: placed in that region, and from then on the room's log follows its
 * traffic (it moves to a region that publishes most of its events; see
 * `GeoWsModuleOptions.homeMoves`). Return the same answer for a room wherever it is
 * called: the first append to reach the broker decides, the others follow it.
 * @example placement: (room) => room.split(':')[0] // rooms named "eu:support-42"
 * @example placement: () => 'auto' // every room lives where its traffic is
 */
export type GeoPlacement = (room: string, context: { region: string; regions: readonly string[] }) => string | undefined;
