import { GeoClientCloseCode } from '../protocol.js';
import type { RegionConnection } from './region-connection.js';

/**
 * The longest a draining connection stays open once its successor is welcomed, waiting for
 * every room to be joined there. The server closes it at the end of its `drainGraceMs`
 * (6 s by default) anyway; this bounds a server with a longer grace and rooms whose join
 * keeps failing.
 */
export const HANDOVER_MAX_MS = 5000;

/**
 * One move away from a draining region, made before break (docs/CLIENT.md, "Reconnecting"):
 * the draining connection (`old`) stays the client's while a connection to the next region
 * (`next`) opens; at `next`'s welcome the dialer makes it the client's and `old` only
 * hands over what it still has in flight (acks, the events of rooms not joined on `next`
 * yet) until every room is joined on `next`, or for {@link HANDOVER_MAX_MS}. The dialer
 * decides; this holds the two connections and the bound's timer, so that whatever ends
 * the handover leaves nothing behind.
 */
export class Handover {
  /** The connection to the next region, once its dial is ready (token, URL). */
  next: RegionConnection | undefined;
  /** `next` was welcomed and is the client's connection: `old` is closed once the rooms moved. */
  promoted = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    /** The connection of the region that drains. */
    readonly old: RegionConnection,
  ) {}

  /** `next` is welcomed and now the client's: `expire` runs after {@link HANDOVER_MAX_MS} unless the handover ends first. */
  promote(expire: () => void): void {
    this.promoted = true;
    this.timer = setTimeout(expire, HANDOVER_MAX_MS);
  }

  /** Done (every room joined on `next`, or the bound): `old` is closed with 4100 (MOVING). */
  end(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.promoted) this.old.close(GeoClientCloseCode.MOVING, 'moved on drain');
  }

  /**
   * `close()` of the client, or a move elsewhere before `next` was welcomed: the connection
   * that is not the client's is dropped (`old` once promoted, else `next`), telling nothing.
   */
  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.promoted) this.old.dispose();
    else this.next?.dispose();
  }
}
