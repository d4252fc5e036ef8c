/**
 * The global event envelope: every room event, in every region, has exactly these fields.
 *
 * Who sets what:
 * - `event_id`, `room_id`: the client (`event_id` is the idempotency key).
 * - `type`: the event name of the `@GeoSubscribe` handler.
 * - `sender`: the authenticated identity; never taken from the client.
 * - `region`, `timestamp`: the server that accepted the event (UTC ISO-8601 with ms and `Z`).
 * - `seq`: the position in the room log, assigned by the transport; `null` for
 *   ephemeral events, which are not in the log.
 * - `data`: the handler's result (the payload after the handler's pipes).
 */
export interface GeoEnvelope<TData = unknown> {
  event_id: string;
  room_id: string;
  type: string;
  sender: string;
  timestamp: string;
  region: string;
  seq: number | null;
  data: TData;
  /** Present (and `'regional'`) only on events of `scope: 'regional'` handlers. */
  scope?: 'regional';
}

/** An envelope before the log assigned its position. */
export type GeoEnvelopeDraft<TData = unknown> = Omit<GeoEnvelope<TData>, 'seq'>;

/** What a client sends to publish: `<event> { event_id, room_id, data }`. */
export interface GeoInboundEvent<TData = unknown> {
  event_id: string;
  room_id: string;
  data: TData;
}

/** A log entry: an envelope with its position. */
export type GeoLoggedEnvelope<TData = unknown> = GeoEnvelope<TData> & { seq: number };
