import type { ErrorFrame, GeoEnvelope } from './protocol.js';

/** What went wrong with a room-log event the server delivered. */
export type AnomalyKind = 'duplicate' | 'regression' | 'gap';

/**
 * A delivered event broke the order the server promises (the `anomaly` event). Duplicates
 * and regressions are dropped: the room's handlers never see them. A gap's event is
 * delivered (what was skipped cannot be had).
 */
export interface Anomaly {
  /**
   * `duplicate`: an `event_id` already delivered from this log (same epoch), at any seq.
   * `regression`: a new `event_id` at a seq at or below one already delivered.
   * `gap`: a seq more than one above the last delivered, on a log that numbers seqs without
   * gaps (`geo.joined` said `contiguous: true`).
   */
  kind: AnomalyKind;
  room: string;
  /** `'regional'` for the room's regional log (its own seq series). */
  scope?: 'regional';
  /** The event's seq. */
  seq: number;
  /** The seq the client expected next: the last one delivered from this log + 1. */
  expected: number;
  /** The event's `event_id`. */
  eventId: string;
}

/**
 * Where a {@link GeoClient} is: `connecting` until its first connection is open, `open`
 * while connected (after `geo.welcome`), `reconnecting` between connections, `closed`
 * after `close()`.
 */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Events of a {@link GeoClient}, by name, with what their listeners receive. */
export interface GeoClientEvents {
  /** The connection state changed. */
  state: ConnectionState;
  /** Connected to a region (first time or after a move). */
  region: { region: string; rttMs: number };
  /** A room could not be resumed without a gap (`recovered: false`): refetch its history. */
  gap: { room: string; epoch: string };
  /**
   * The server ended a membership on its own, e.g. `FORBIDDEN` when a refreshed token
   * (`geo.auth`) no longer allows the room: the room is no longer joined, is not joined again
   * on a reconnect, and its waiting `join()` and publishes were rejected with `code`. Not
   * emitted for the app's own `leave()`.
   */
  left: { room: string; code: string; message: string };
  /**
   * A `geo.error` not tied to a pending publish or join, or a failure of the client's own
   * (`UNAUTHORIZED`: the `token` function failed), or, after the first connection, a
   * reconnect a region refused for good (`UNAUTHORIZED`, `FORBIDDEN`): then the client has
   * stopped (state `closed`).
   */
  error: ErrorFrame;
  /**
   * A connection ended and the next attempt is scheduled in `delayMs`. `code` is the close
   * code that ended it: the server's ({@link GeoCloseCode}), the client's own
   * ({@link GeoClientCloseCode}), or 1006 when it was lost (or never opened) without one.
   */
  reconnect: { attempt: number; delayMs: number; region: string; code: number };
  /**
   * A room-log event broke the order the server promises: a duplicate or a regression
   * (dropped: the room's handlers never see it) or a skipped seq (delivered). Once per
   * such event; counted in {@link GeoClient.consistency} (docs/CLIENT.md, "Consistency").
   */
  anomaly: Anomaly;
}

/** How an event reached a {@link RoomHandler}. */
export interface EventDelivery {
  /**
   * Read from the room's history while (re)joining (`seq` at or below the `geo.joined`
   * seq), not received live. After a restore (server session or `storage`), such events
   * may include ones this app showed before it lost its state: show them as history.
   */
  readonly replayed: boolean;
}

/** Receives a joined room's events, in `seq` order, each once. */
export type RoomHandler = (envelope: GeoEnvelope, delivery: EventDelivery) => void;

/** Emits one of the client's events; what every part of the client is given to tell the app. */
export type Emit = <K extends keyof GeoClientEvents>(event: K, value: GeoClientEvents[K]) => void;

/**
 * The client's listeners. The app's code runs inside the client's socket callbacks: an
 * exception there must not skip the other listeners, break the client's state or (in Node)
 * crash the process.
 */
export class ClientEvents {
  private readonly listeners = new Map<keyof GeoClientEvents, Set<(value: never) => void>>();

  /** Calls `listener` on every `event`; returns a function that removes it. */
  on<K extends keyof GeoClientEvents>(event: K, listener: (value: GeoClientEvents[K]) => void): () => void {
    const set = this.listeners.get(event) ?? new Set();
    set.add(listener);
    this.listeners.set(event, set);
    return () => set.delete(listener);
  }

  readonly emit = <K extends keyof GeoClientEvents>(event: K, value: GeoClientEvents[K]): void => {
    for (const listener of this.listeners.get(event) ?? []) {
      const call = () => (listener as (value: GeoClientEvents[K]) => void)(value);
      // A failing `error` listener has nowhere left to report to.
      if (event === 'error') {
        try {
          call();
        } catch (error) {
          console.error('GeoClient: an error listener threw', error);
        }
      } else this.runCallback(call, `a "${event}" listener`);
    }
  };

  /**
   * Runs the application's code (a listener, a room's handler): an exception is reported as
   * an `error` event with code `CALLBACK_FAILED`.
   */
  readonly runCallback = (run: () => void, what: string): void => {
    try {
      run();
    } catch (error) {
      this.emit('error', { code: 'CALLBACK_FAILED', message: `${what} threw: ${error instanceof Error ? error.message : String(error)}` });
    }
  };
}
