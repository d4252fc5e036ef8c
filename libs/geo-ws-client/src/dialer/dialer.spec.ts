import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { GeoClientError } from '../errors.js';
import type { GeoClientEvents } from '../geo-client-events.js';
import type { GeoClientOptions } from '../geo-client-options.js';
import { checkOptions } from './connection-options.js';
import { memorySockets } from '../testing/memory-socket.js';
import { Dialer, type DialerHooks } from './dialer.js';

/**
 * The dialer alone, on jest's fake clock, against in-memory sockets (as in browsers: no
 * `terminate()`, so an abandoned socket is closed with the client's code), with hooks that
 * record what it tells the client.
 */
describe('Dialer', () => {
  let sockets: ReturnType<typeof memorySockets>;
  let told: string[];
  let reconnects: GeoClientEvents['reconnect'][];
  let lifetime: AbortController;
  /** What `settled()` answers: every room joined on the current connection. */
  let settled: boolean;

  const hooks = (): DialerHooks => ({
    sessionId: () => 's-1',
    ranked: () => told.push('ranked'),
    attempting: () => told.push('attempting'),
    welcomed: (welcome) => told.push(`welcomed ${welcome.region}`),
    frame: (frame) => told.push(`frame ${frame.event}`),
    draining: (frame) => told.push(`draining ${frame.event}`),
    settled: () => settled,
    rtt: () => told.push('rtt'),
    lost: () => told.push('lost'),
    retrying: (reconnect) => reconnects.push(reconnect),
    error: (error) => told.push(`error ${error.code}`),
    stop: (reason) => told.push(`stop ${reason.code}`),
  });

  const dialer = (options: Partial<GeoClientOptions> = {}): Dialer => {
    const all: GeoClientOptions = {
      regions: [
        { name: 'eu', url: 'http://eu.test' },
        { name: 'us', url: 'http://us.test' },
      ],
      regionOrder: ['eu', 'us'],
      WebSocket: sockets.Socket,
      probe: async () => 1,
      heartbeatMs: 1000,
      backoff: { baseMs: 100, maxMs: 100 },
      ...options,
    };
    return new Dialer(all, checkOptions(all), hooks(), lifetime.signal);
  };

  /** Connects and welcomes the first socket. */
  const connected = async (options: Partial<GeoClientOptions> = {}): Promise<Dialer> => {
    const created = dialer(options);
    const connecting = created.connect();
    await jest.advanceTimersByTimeAsync(0);
    sockets.last().welcome();
    await connecting;
    return created;
  };

  beforeEach(() => {
    jest.useFakeTimers();
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
    sockets = memorySockets();
    told = [];
    reconnects = [];
    lifetime = new AbortController();
    settled = true;
  });

  afterEach(() => {
    jest.restoreAllMocks();
    jest.useRealTimers();
  });

  it('connect(): one socket to the first region, with the query, the session and the token; resolves at geo.welcome', async () => {
    const created = await connected({ query: { room: 'lobby' }, token: () => 't1' });
    const [socket] = sockets.sockets;
    expect(`${socket.url.pathname}?${socket.url.searchParams.toString()}`).toBe('/ws?room=lobby&session=s-1');
    expect(socket.protocols).toEqual(['geo-ws.v1', 'bearer.t1']);
    expect([created.isOpen, created.region, told]).toEqual([true, 'eu', ['ranked', 'attempting', 'welcomed eu']]);
  });

  it('pings after heartbeatMs without a frame; after heartbeatTimeoutMs more of silence the socket is abandoned (4102) and the next attempt scheduled, at the next region', async () => {
    const created = await connected({ heartbeatTimeoutMs: 500 });
    const socket = sockets.last();
    await jest.advanceTimersByTimeAsync(999);
    expect(socket.frames('geo.ping')).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(socket.frames('geo.ping')).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(100);
    socket.receive('geo.pong', {}); // t = 1100: silence counts from here
    await jest.advanceTimersByTimeAsync(1000);
    expect(socket.frames('geo.ping')).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(499);
    expect(socket.closedWith).toBeUndefined();
    await jest.advanceTimersByTimeAsync(1);
    expect([socket.closedWith, created.isOpen]).toEqual([4102, false]);
    expect(told.slice(-2)).toEqual(['rtt', 'lost']);
    expect(reconnects).toEqual([{ attempt: 1, delayMs: 50, region: 'us', code: 4102 }]);
  });

  it('a connection that keeps receiving sends no ping (but one a minute, for the server idle timeout), and any frame counts as life', async () => {
    await connected({ heartbeatTimeoutMs: 500 });
    const socket = sockets.last();
    for (let t = 0; t < 120_000; t += 900) {
      socket.receive('chat.message', { room_id: 'r', seq: null });
      await jest.advanceTimersByTimeAsync(900);
    }
    expect(socket.frames('geo.ping')).toHaveLength(2);
    expect(socket.closedWith).toBeUndefined();
  });

  it('a server that says its idle timeout (idle_timeout_ms) gets a ping within half of it from a client that only listens', async () => {
    const created = dialer({ heartbeatTimeoutMs: 500 });
    const connecting = created.connect();
    await jest.advanceTimersByTimeAsync(0);
    const socket = sockets.last();
    socket.welcome({ idle_timeout_ms: 4000 });
    await connecting;
    for (let t = 0; t < 12_000; t += 900) {
      socket.receive('chat.message', { room_id: 'r', seq: null });
      await jest.advanceTimersByTimeAsync(900);
    }
    // Sent at 2 s, 4 s, ... : never 4 s without a frame from the client.
    expect(socket.frames('geo.ping').length).toBeGreaterThanOrEqual(5);
    expect(socket.closedWith).toBeUndefined();
  });

  it('no geo.welcome within twice heartbeatMs: abandoned with 4101, a failed attempt', async () => {
    const created = dialer({ failoverAfter: 1 });
    void created.connect();
    await jest.advanceTimersByTimeAsync(0);
    sockets.last().open();
    await jest.advanceTimersByTimeAsync(2000);
    expect(sockets.last().closedWith).toBe(4101);
    expect(reconnects).toEqual([{ attempt: 1, delayMs: 50, region: 'us', code: 4101 }]);
    await jest.advanceTimersByTimeAsync(50);
    expect(sockets.sockets.map((socket) => socket.url.host)).toEqual(['eu.test', 'us.test']);
  });

  it('geo.reconnect (the region drains): the next region is dialed while the draining connection stays; its welcome takes over; the old one closes with 4100 once every room is joined', async () => {
    const created = await connected();
    const old = sockets.last();
    settled = false;
    old.receive('geo.reconnect', { region: 'asia', url: 'ws://asia.test/ws' });
    await jest.advanceTimersByTimeAsync(0);
    const next = sockets.last();
    expect([next.url.host, old.closedWith, created.region]).toEqual(['us.test', undefined, 'eu']);
    old.receive('geo.joined', { room: 'r', seq: 1, epoch: 'e', recovered: true }); // still the client's
    next.welcome({ region: 'us' });
    expect([created.region, created.isOpen, told.slice(-3)]).toEqual(['us', true, ['frame geo.joined', 'lost', 'welcomed us']]);
    old.receive('geo.ack', { event_id: 'p1', seq: 2 }); // in flight on the old one
    expect(told.at(-1)).toBe('draining geo.ack');
    settled = true;
    next.receive('geo.joined', { room: 'r', seq: 2, epoch: 'e', recovered: true });
    expect(old.closedWith).toBe(4100);
    old.end(4100);
    expect([reconnects, told.filter((entry) => entry === 'attempting' || entry === 'lost')]).toEqual([[], ['attempting', 'lost']]);
  });

  it('the old connection closes after at most 5 s though a room never joins there; a drain whose next region fails stays on the old one', async () => {
    await connected();
    settled = false;
    sockets.last().receive('geo.reconnect', { region: 'us', url: 'ws://us.test/ws' });
    await jest.advanceTimersByTimeAsync(0);
    sockets.last().welcome({ region: 'us' });
    await jest.advanceTimersByTimeAsync(4999);
    expect(sockets.sockets[0].closedWith).toBeUndefined();
    await jest.advanceTimersByTimeAsync(1);
    expect(sockets.sockets[0].closedWith).toBe(4100);
    // Now us drains, and the next region (eu) fails: the client stays on us until us closes it.
    sockets.last().receive('geo.reconnect', { region: 'eu', url: 'ws://eu.test/ws' });
    await jest.advanceTimersByTimeAsync(0);
    expect(sockets.last().url.host).toBe('eu.test');
    sockets.last().end(1006);
    expect([sockets.sockets[1].closedWith, reconnects]).toEqual([undefined, []]);
    sockets.sockets[1].end(1012);
    expect(reconnects.map((reconnect) => reconnect.code)).toEqual([1012]);
  });

  it('the draining region closes before the next one welcomed: that one is the next attempt (reconnecting), no other is dialed', async () => {
    await connected();
    sockets.last().receive('geo.reconnect', { region: 'us', url: 'ws://us.test/ws' });
    await jest.advanceTimersByTimeAsync(0);
    sockets.sockets[0].end(1012);
    expect(reconnects).toEqual([{ attempt: 0, delayMs: 0, region: 'us', code: 1012 }]);
    sockets.last().welcome({ region: 'us' });
    await jest.advanceTimersByTimeAsync(100);
    expect([sockets.sockets.length, told.slice(-2)]).toEqual([2, ['lost', 'welcomed us']]);
  });

  it('frames other than its own go to the client', async () => {
    await connected();
    sockets.last().receive('geo.joined', { room: 'r', seq: 0, epoch: 'e', recovered: true });
    expect(told.at(-1)).toBe('frame geo.joined');
  });

  it('a token function that fails on a reconnect: error, then another attempt after a backoff delay', async () => {
    let calls = 0;
    await connected({
      token: () => (++calls === 2 ? Promise.reject(new Error('down')) : `t${calls}`),
    });
    sockets.last().end(1006);
    await jest.advanceTimersByTimeAsync(50);
    expect(told.slice(-3)).toEqual(['lost', 'error UNAUTHORIZED', 'lost']);
    expect(reconnects.map((reconnect) => reconnect.code)).toEqual([1006, 1006]);
  });

  it('stop() clears every timer of the dialer and closes the socket with 1000, telling nothing; failConnect() rejects connect()', async () => {
    const created = dialer({ driftBackMs: 5000 });
    const connecting = created.connect();
    await jest.advanceTimersByTimeAsync(0);
    expect(jest.getTimerCount()).toBe(3); // the connect deadline, the drift check, the welcome deadline (the heartbeat starts at the welcome)
    lifetime.abort();
    created.stop();
    created.failConnect(new GeoClientError('CLOSED', 'closed'));
    await expect(connecting).rejects.toMatchObject({ code: 'CLOSED' });
    expect([jest.getTimerCount(), sockets.last().closedWith, told]).toEqual([0, 1000, ['ranked', 'attempting']]);
    sockets.last().end(1000); // detached: nothing reaches the dialer
    expect(reconnects).toEqual([]);
  });
});
