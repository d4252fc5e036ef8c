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

  const hooks = (): DialerHooks => ({
    sessionId: () => 's-1',
    ranked: () => told.push('ranked'),
    attempting: () => told.push('attempting'),
    welcomed: (welcome) => told.push(`welcomed ${welcome.region}`),
    frame: (frame) => told.push(`frame ${frame.event}`),
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

  it('pings every heartbeatMs; with no frame for twice as long the socket is abandoned (4102) and the next attempt scheduled', async () => {
    const created = await connected();
    await jest.advanceTimersByTimeAsync(1000);
    const socket = sockets.last();
    expect(socket.frames('geo.ping')).toHaveLength(1);
    socket.receive('geo.pong', {});
    await jest.advanceTimersByTimeAsync(2000);
    expect(socket.closedWith).toBeUndefined();
    await jest.advanceTimersByTimeAsync(1000);
    expect([socket.closedWith, created.isOpen]).toEqual([4102, false]);
    expect(told.slice(-2)).toEqual(['rtt', 'lost']);
    expect(reconnects).toEqual([{ attempt: 1, delayMs: 50, region: 'eu', code: 4102 }]);
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

  it('geo.reconnect (the region drains): closes with 4100 and goes to the other region at once', async () => {
    await connected();
    sockets.last().receive('geo.reconnect', { region: 'asia', url: 'ws://asia.test/ws' });
    expect(sockets.last().closedWith).toBe(4100);
    sockets.last().end(4100);
    expect(reconnects).toEqual([{ attempt: 0, delayMs: 0, region: 'us', code: 4100 }]);
    await jest.advanceTimersByTimeAsync(0);
    expect(sockets.last().url.host).toBe('us.test');
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
    expect(jest.getTimerCount()).toBe(4); // the connect deadline, the heartbeat, the drift check, the welcome deadline
    lifetime.abort();
    created.stop();
    created.failConnect(new GeoClientError('CLOSED', 'closed'));
    await expect(connecting).rejects.toMatchObject({ code: 'CLOSED' });
    expect([jest.getTimerCount(), sockets.last().closedWith, told]).toEqual([0, 1000, ['ranked', 'attempting']]);
    sockets.last().end(1000); // detached: nothing reaches the dialer
    expect(reconnects).toEqual([]);
  });
});
