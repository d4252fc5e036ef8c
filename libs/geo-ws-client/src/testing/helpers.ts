// Test support for the client's specs; not part of the package (excluded from its build).
import { createHook } from 'node:async_hooks';
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

/** The watches `watchTimers()` started; `stopWatchingTimers()` (in an afterEach) ends them. */
const timerWatches = new Set<{ disable(): unknown }>();

/**
 * Watches the timers created from now on, so a test counts its own and not those an earlier
 * test file left behind in the same worker (a global count moved by 20 under CI). `active()`
 * counts the watched timers still pending that keep the process alive. Async hooks slow every
 * promise while enabled: call `stopWatchingTimers()` after each test.
 */
export function watchTimers(): { active(): number } {
  // Node marks a timer `_destroyed` once it fired or was cleared; the destroy hook comes later.
  type Timer = { hasRef?(): boolean; _destroyed?: boolean };
  const pending = new Map<number, Timer>();
  const hook = createHook({
    init(id, type, _trigger, resource) {
      if (type === 'Timeout') pending.set(id, resource);
    },
    destroy(id) {
      pending.delete(id);
    },
  }).enable();
  timerWatches.add(hook);
  return { active: () => [...pending.values()].filter((timer) => !timer._destroyed && timer.hasRef?.() !== false).length };
}

export function stopWatchingTimers(): void {
  for (const hook of timerWatches) hook.disable();
  timerWatches.clear();
}
