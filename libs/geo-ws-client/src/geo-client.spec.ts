import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { GeoClient, type GeoClientOptions } from './geo-client.js';
import type { PositionStorage } from './geo-client-options.js';
import { memorySockets } from './testing/memory-socket.js';

/**
 * The facade on jest's fake clock, against in-memory sockets: every part clears the timers
 * it started, so after `close()` no timer of the client is left, whatever was running.
 */
describe('GeoClient close(): no timer of the client is left', () => {
  let sockets: ReturnType<typeof memorySockets>;
  const storage: PositionStorage = { getItem: () => null, setItem: () => undefined };

  const client = (options: Partial<GeoClientOptions> = {}): GeoClient =>
    new GeoClient({
      regions: [
        { name: 'eu', url: 'http://eu.test' },
        { name: 'us', url: 'http://us.test' },
      ],
      regionOrder: ['eu', 'us'],
      WebSocket: sockets.Socket,
      probe: async () => 1,
      heartbeatMs: 1000,
      backoff: { baseMs: 5000, maxMs: 5000 },
      ...options,
    });

  /** Lets the client's promises (probes, token function) run; no timer fires. */
  const settle = () => jest.advanceTimersByTimeAsync(0);

  beforeEach(() => {
    jest.useFakeTimers();
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
    sockets = memorySockets();
  });

  afterEach(() => {
    jest.restoreAllMocks();
    jest.useRealTimers();
  });

  it('with every kind running: heartbeat, drift back, token refresh, reports, a join retry, a publish retry, a storage write', async () => {
    const geo = client({ driftBackMs: 60_000, token: () => 'fresh', storage });
    const connecting = geo.connect();
    await settle();
    expect(jest.getTimerCount()).toBe(3); // the connect deadline, the drift check, the welcome deadline (the heartbeat starts at the welcome)
    const socket = sockets.last();
    socket.welcome({ expires_at: new Date(Date.now() + 3_600_000).toISOString(), report_ms: 1000 });
    await connecting;
    const retried = geo.join('retried', () => undefined);
    socket.receive('geo.error', { code: 'UNAVAILABLE', message: 'busy', room: 'retried' });
    const joined = geo.join('r', () => undefined);
    socket.receive('geo.joined', { room: 'r', seq: 0, epoch: 'e1', recovered: true });
    await joined;
    const publishing = geo.publish('r', 'chat.message', { text: 'x' }, 'p1');
    socket.receive('geo.error', { code: 'RATE_LIMITED', message: 'slow down', event_id: 'p1', room: 'r' });
    socket.receive('chat.message', {
      event_id: 'x1',
      room_id: 'r',
      type: 'chat.message',
      sender: 's',
      timestamp: '',
      region: 'eu',
      seq: 1,
      data: {},
    });
    // heartbeat, drift, token refresh, reports, join retry, publish retry, storage write
    expect(jest.getTimerCount()).toBe(7);
    geo.close();
    expect(jest.getTimerCount()).toBe(0);
    await expect(retried).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(publishing).rejects.toMatchObject({ code: 'CLOSED' });
    expect(socket.closedWith).toBe(1000);
  });

  it('while the first connection waits for its welcome: the connect and welcome deadlines', async () => {
    const geo = client();
    const connecting = geo.connect();
    await settle();
    sockets.last().open();
    expect(jest.getTimerCount()).toBe(2);
    geo.close();
    expect(jest.getTimerCount()).toBe(0);
    await expect(connecting).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('between connections: the reconnect timer', async () => {
    const geo = client();
    const connecting = geo.connect();
    await settle();
    sockets.last().welcome();
    await connecting;
    sockets.last().end(1006);
    expect(geo.state).toBe('reconnecting');
    expect(jest.getTimerCount()).toBe(2); // the heartbeat, the reconnect
    geo.close();
    expect(jest.getTimerCount()).toBe(0);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(sockets.sockets).toHaveLength(1);
  });
});
