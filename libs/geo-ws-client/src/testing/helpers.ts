// Test support for the client's specs; not part of the package (excluded from its build).
import { WebSocket } from 'ws';
import type { GeoEnvelope } from '../protocol.js';

/** Client options for specs against fake regions: Node's ws, no RTT probing, quick retries, heartbeats out of the way. */
export const TEST_CLIENT_OPTIONS = {
  WebSocket,
  probe: async () => 1,
  backoff: { baseMs: 20, maxMs: 80 },
  heartbeatMs: 60_000,
} as const;

/** A room event as a fake region sends it: `event_id` `e<seq>` unless `extra` says otherwise. */
export const testEnvelope = (room: string, seq: number | null, extra: Partial<GeoEnvelope> = {}): GeoEnvelope => ({
  event_id: `e${seq}`,
  room_id: room,
  type: 'chat.message',
  sender: 'someone',
  timestamp: new Date().toISOString(),
  region: 'eu',
  seq,
  data: {},
  ...extra,
});

export const sleep = (ms: number): Promise<void> => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Fails fast instead of hanging when a promise never settles. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms))),
  ]);
}

/** Waits until `condition` holds, polling every 5 ms; throws after `ms`. */
export async function until(condition: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Timers that keep the process alive (unref'd ones do not count). */
export const activeTimers = (): number => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
