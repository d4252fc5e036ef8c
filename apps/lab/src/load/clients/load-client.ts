import type { ClientPlan, TokenAuthority } from '../load.types.js';

/**
 * Where an adapter reports what its client sees. The worker keeps one per client and
 * keeps it cheap: a delivery is a few array pushes.
 */
export interface ClientSink {
  /** A delivery of the event numbered `number` (parsed from the text prefix); `seq` -1 where the impl has none. */
  message(room: string, number: number, seq: number): void;
  /** The connection was lost (the client is no longer in its rooms). */
  down(): void;
  /** Connected again and back in every room. */
  up(): void;
  /** An error or close code the client saw. */
  error(code: string): void;
  /** geo: a room re-joined with `recovered: false`. */
  gap(room: string): void;
}

/** What the server said about a publish. */
export interface PublishAck {
  seq?: number;
  duplicate?: boolean;
}

/** One simulated client of any implementation, seen the same way by the worker. */
export interface LoadClient {
  /** The region connected to now (the last one while disconnected). */
  readonly region: string;
  /** Opens the first connection and joins every planned room; rejects with a short reason. */
  connect(): Promise<void>;
  /** Publishes `text` to `room` with the event id `eventId`; resolves on the ack, rejects with an Error whose message is a code. */
  publish(room: string, eventId: string, text: string): Promise<PublishAck>;
  /** Stops reading the TCP socket for `ms` (the server sees a slow consumer), then reads again. */
  pauseReading(ms: number): void;
  /** Bytes its TCP sockets read so far, over every connection (where the adapter counts them). */
  bytesRead?(): number;
  /** geo: each failover's milestones (`ClientLog.failovers`). */
  failovers?(): number[];
  /** Closes for good: no reconnect, no timer left. */
  close(): void;
}

export interface ClientOptions {
  plan: ClientPlan;
  sink: ClientSink;
  /** geo only. */
  auth?: TokenAuthority;
  /** geo only: JSON (default), MessagePack, or JSON with permessage-deflate. */
  wire?: 'json' | 'msgpack' | 'deflate';
}

/** The event number at the start of a payload text (`${number}:${sentAt}:…`), or -1. */
export function numberOf(text: unknown): number {
  if (typeof text !== 'string') return -1;
  const number = Number.parseInt(text, 10);
  return Number.isFinite(number) ? number : -1;
}

/** How long peers wait for an ack before sending the same publish again, and how many times. */
export const ACK_TIMEOUT_MS = 5000;
export const MAX_PUBLISH_ATTEMPTS = 12;

/** Full-jitter backoff for the peers' reconnects: [base/2, min(max, base·2ⁿ)]. */
export function reconnectDelay(attempt: number, baseMs = 200, maxMs = 5000): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 10));
  return cap / 2 + Math.random() * (cap / 2);
}

/** A short reason for a failure: an errno code or the first line of the message. */
export function reason(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as Error & { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    return error.message.split('\n')[0].slice(0, 120);
  }
  return String(error).slice(0, 120);
}
