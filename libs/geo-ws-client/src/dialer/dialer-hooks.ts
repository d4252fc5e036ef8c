import type { GeoClientError } from '../errors.js';
import type { GeoClientEvents } from '../geo-client-events.js';
import type { ErrorFrame, Frame, WelcomeFrame } from '../protocol.js';
import type { RankedRegion } from './nearest-region.js';

/** What the dialer tells the client, and asks of it. */
export interface DialerHooks {
  /** The session to ask back on each connection (`session` query parameter). */
  sessionId(): string | undefined;
  /** The regions are ranked: the first attempt follows now. */
  ranked(): void;
  /** An attempt starts: the state is `connecting` until the first connection opens, `reconnecting` after. */
  attempting(): void;
  /** `geo.welcome`: the connection is open (the client updates its state and joins its rooms again). */
  welcomed(welcome: WelcomeFrame, region: RankedRegion): void;
  /** Any frame of the connection other than `geo.welcome`, `geo.reconnect` and `geo.pong`. */
  frame(frame: Frame): void;
  /**
   * A frame that arrived on the connection of a drained region after its successor took
   * over: only what was in flight on it counts (an ack, an event of a room not joined on the
   * new connection yet).
   */
  draining(frame: Frame): void;
  /** Every room is joined on the current connection: a draining one can close. */
  settled(): boolean;
  /** `geo.pong`: the round trip of the last `geo.ping`, in ms. */
  rtt(ms: number): void;
  /** The connection ended: whatever was sent on it is unanswered. */
  lost(): void;
  /** The next attempt is scheduled. */
  retrying(reconnect: GeoClientEvents['reconnect']): void;
  /** A failure of the dialer's own that does not stop it, or the reason it stopped after the first connection. */
  error(error: ErrorFrame): void;
  /** Gives up for good: the client stops, and everything waiting rejects with `reason`. */
  stop(reason: GeoClientError): void;
}
