/** Options of {@link GeoSubscribe}. */
export interface GeoSubscribeOptions {
  /**
   * `global` (default): the event goes to the room's global log, delivered in every
   * region. `regional`: it goes to this region's log of the room and never leaves the
   * region (G5); its envelope carries `scope: 'regional'`.
   */
  scope?: 'global' | 'regional';
  /**
   * Skip the log: at-most-once, no `seq` (null), no history, no resume. For typing
   * indicators and cursors.
   */
  ephemeral?: boolean;
  /**
   * Re-checks the token at the moment the action runs: not expired, not revoked on the
   * shared revocation list (any region). For payments, deletions, role changes.
   */
  critical?: boolean;
  /** Regions where this event may be published; elsewhere it is refused with FORBIDDEN. Default: all. */
  regions?: string[];
}

/** The metadata stored by {@link GeoSubscribe}. */
export interface GeoSubscribeMetadata extends Required<Omit<GeoSubscribeOptions, 'regions'>> {
  event: string;
  regions: string[] | undefined;
}
