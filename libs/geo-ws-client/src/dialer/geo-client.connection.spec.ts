import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { WebSocket } from 'ws';
import { GeoClient, type GeoClientEvents, type GeoClientOptions } from '../geo-client.js';
import { GeoClientCloseCode, GeoCloseCode, type GeoEnvelope, type GeoRegion, type WebSocketConstructor } from '../protocol.js';
import { FakeLogs, FakeRegion, sleep, startMuteHost, stopWatchingTimers, until, watchTimers, within } from '../testing/index.js';

/**
 * GeoClient's connection lifecycle against fake regions (testing/fake-region.ts): the
 * welcome, every close code it reacts to, the drain, liveness, close() (the token refresh:
 * token/geo-client.token.spec.ts).
 */

type Reconnect = GeoClientEvents['reconnect'];

/** `ws` without `terminate()`, as in browsers: an abandoned connection is closed with the client's code. */
class BrowserLikeWebSocket extends WebSocket {
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols);
    (this as { terminate?: unknown }).terminate = undefined;
  }
}

describe('GeoClient connection (fake regions over a real WebSocket)', () => {
  const fakes: FakeRegion[] = [];
  const closers: (() => Promise<void>)[] = [];
  let client: GeoClient | undefined;
  let reconnects: Reconnect[] = [];

  const region = async (name = 'eu', logs?: FakeLogs): Promise<FakeRegion> => {
    const fake = await FakeRegion.start({ name, logs });
    fakes.push(fake);
    return fake;
  };

  const connect = async (regions: GeoRegion[], options: Partial<GeoClientOptions> = {}): Promise<GeoClient> => {
    reconnects = [];
    const connecting = GeoClient.connect({
      regions,
      regionOrder: regions.map((candidate) => candidate.name),
      WebSocket,
      probe: async () => 1,
      backoff: { baseMs: 20, maxMs: 80 },
      heartbeatMs: 60_000,
      connectTimeoutMs: 4000,
      ...options,
    });
    client = await within(connecting, 4000, 'connect()');
    client.on('reconnect', (event) => reconnects.push(event));
    return client;
  };

  afterEach(async () => {
    stopWatchingTimers();
    client?.close();
    client = undefined;
    await Promise.all([...fakes.splice(0).map((fake) => fake.close()), ...closers.splice(0).map((close) => close())]);
  });

  describe('connect and geo.welcome', () => {
    it('resolves on geo.welcome: open, in its region, with the sender and session it names; token and query on the upgrade', async () => {
      const eu = await region('eu');
      eu.welcome = () => ({ sender: 'alice', session_id: 's-1' });
      const seen: string[] = [];
      let token = 0;
      const connecting = GeoClient.connect({
        regions: eu.regions,
        WebSocket,
        probe: async () => 7,
        token: () => `t${++token}`,
        query: { name: 'Alice' },
        heartbeatMs: 60_000,
        backoff: { baseMs: 20, maxMs: 80 },
      });
      client = await within(connecting, 3000, 'connect()');
      client.on('region', ({ region: name, rttMs }) => seen.push(`${name} ${rttMs}`));
      expect([client.state, client.region, client.sender, client.sessionId]).toEqual(['open', 'eu', 'alice', 's-1']);
      expect(client.rankedRegions.map((ranked) => [ranked.name, ranked.rttMs])).toEqual([['eu', 7]]);
      expect(eu.connections[0].token).toBe('t1');
      expect(eu.connections[0].url.searchParams.get('name')).toBe('Alice');
      expect(eu.connections[0].url.searchParams.has('session')).toBe(false);
      // The next connection asks for the session back, with a fresh token.
      eu.dropAll();
      await until(() => eu.connections.length === 2 && client!.state === 'open', 'the reconnect');
      expect(eu.connections[1].token).toBe('t2');
      expect(eu.connections[1].url.searchParams.get('session')).toBe('s-1');
      expect(seen).toEqual(['eu 7']);
    });

    it('connect() rejects at once, and leaves nothing running, when no socket can be made or the token function fails', async () => {
      const eu = await region('eu');
      const timers = watchTimers();
      const Refusing = function Refusing() {
        throw new SyntaxError('An invalid or duplicated subprotocol was specified');
      } as unknown as WebSocketConstructor;
      const noSocket = GeoClient.connect({ regions: eu.regions, probe: async () => 1, WebSocket: Refusing });
      await expect(within(noSocket, 1000, 'connect() when the socket cannot be made')).rejects.toThrow(/subprotocol/);
      const noToken = GeoClient.connect({
        regions: eu.regions,
        probe: async () => 1,
        WebSocket,
        token: () => Promise.reject(new Error('auth server down')),
      });
      await expect(within(noToken, 1000, 'connect() with a failing token function')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
      await until(() => timers.active() === 0, 'no timer of the client left', 1000);
      expect(eu.connections).toHaveLength(0);
    });

    it('a token function that fails on a reconnect: `error`, then another attempt with backoff (the client does not stall)', async () => {
      const eu = await region('eu');
      let calls = 0;
      await connect(eu.regions, { token: () => (++calls === 2 ? Promise.reject(new Error('auth server blip')) : `t${calls}`) });
      const errors: string[] = [];
      client!.on('error', (error) => errors.push(error.code));
      eu.dropAll();
      await until(() => eu.connections.length === 2 && client!.state === 'open', 'the reconnect after the failed token');
      expect(errors).toEqual(['UNAUTHORIZED']);
      expect(eu.connections.map((connection) => connection.token)).toEqual(['t1', 't3']);
      expect(reconnects.map((reconnect) => reconnect.code)).toEqual([1006, 1006]);
    });
  });

  describe('close codes', () => {
    it('1012 (the region restarts): to the next region at once, resuming every room there', async () => {
      const logs = new FakeLogs();
      const [eu, us] = [await region('eu', logs), await region('us', logs)];
      await connect([eu.region, us.region]);
      const events: number[] = [];
      await client!.join('r', (event) => events.push(event.seq!));
      eu.emit('r');
      await until(() => events.length === 1, 'the first event');
      eu.closeAll(GeoCloseCode.SERVICE_RESTART, 'restart');
      await until(() => client!.region === 'us' && us.joinRequests.length === 1, 'the move to us');
      expect(reconnects).toEqual([{ attempt: 0, delayMs: 0, region: 'us', code: 1012 }]);
      expect(us.joinRequests).toEqual([{ room: 'r', since: 1, epoch: 'e1' }]);
      us.emit('r');
      await until(() => events.length === 2, 'an event on us');
      expect(events).toEqual([1, 2]);
    });

    it('1008 (too many refused frames): the same region, after a delay of at least half a ceiling that doubles with each 1008 in a row, though every connection was welcomed', async () => {
      const eu = await region('eu');
      const us = await region('us');
      await connect([eu.region, us.region], { backoff: { baseMs: 20, maxMs: 1000 }, failoverAfter: 1 });
      await client!.join('r', () => undefined);
      const gaps: number[] = [];
      for (let round = 1; round <= 3; round++) {
        const closedAt = Date.now();
        eu.closeAll(GeoCloseCode.POLICY_VIOLATION, 'too many refused frames');
        await until(() => eu.open.length === 1 && eu.joinRequests.length === round + 1, `reconnect ${round}`);
        gaps.push(Date.now() - closedAt);
      }
      expect(reconnects.map(({ code, region: name }) => `${code} ${name}`)).toEqual(['1008 eu', '1008 eu', '1008 eu']);
      const delays = reconnects.map((reconnect) => reconnect.delayMs);
      expect(delays[0]).toBeGreaterThanOrEqual(20);
      expect(delays[0]).toBeLessThanOrEqual(40);
      expect(delays[1]).toBeGreaterThanOrEqual(40);
      expect(delays[1]).toBeLessThanOrEqual(80);
      expect(delays[2]).toBeGreaterThanOrEqual(80);
      expect(delays[2]).toBeLessThanOrEqual(160);
      for (const [i, gap] of gaps.entries()) expect(gap).toBeGreaterThanOrEqual(delays[i] - 2);
      expect(us.connections).toHaveLength(0);
    });

    it.each([
      ['1013 (slow consumer)', GeoCloseCode.SLOW_CONSUMER],
      ['1009 (a frame too big)', GeoCloseCode.MESSAGE_TOO_BIG],
      ['4008 (too many connections of this user)', GeoCloseCode.TOO_MANY_CONNECTIONS],
    ])('%s: the same region after a penalty delay, resuming from the last event', async (_, code) => {
      const eu = await region('eu');
      await connect(eu.regions, { backoff: { baseMs: 20, maxMs: 1000 } });
      const events: number[] = [];
      await client!.join('r', (event) => events.push(event.seq!));
      eu.emit('r');
      eu.emit('r');
      await until(() => events.length === 2, 'two events');
      eu.closeAll(code);
      await until(() => client!.state === 'reconnecting', 'the close');
      eu.emit('r'); // missed while away
      await until(() => events.length === 3, 'the missed event, after the resume');
      expect(reconnects).toEqual([{ attempt: 1, delayMs: expect.any(Number), region: 'eu', code }]);
      expect(reconnects[0].delayMs).toBeGreaterThanOrEqual(20);
      expect(eu.joinRequests.at(-1)).toEqual({ room: 'r', since: 2, epoch: 'e1' });
      expect(events).toEqual([1, 2, 3]);
    });

    it.each([
      ['4001 (token expired)', GeoCloseCode.TOKEN_EXPIRED],
      ['4002 (idle)', GeoCloseCode.IDLE_TIMEOUT],
      ['4003 (token revoked)', GeoCloseCode.TOKEN_REVOKED],
      ['4004 (a refreshed token not valid in this region)', GeoCloseCode.REGION_FORBIDDEN],
      ['1006 (lost)', 1006],
    ])('%s: reconnects with backoff, calling the token function again', async (_, code) => {
      const eu = await region('eu');
      let token = 0;
      await connect(eu.regions, { token: () => `t${++token}` });
      await client!.join('r', () => undefined);
      if (code === 1006) eu.dropAll();
      else eu.closeAll(code);
      await until(() => eu.joinRequests.length === 2, 'the rejoin');
      expect(reconnects).toEqual([{ attempt: 1, delayMs: expect.any(Number), region: 'eu', code }]);
      expect(reconnects[0].delayMs).toBeLessThanOrEqual(20);
      expect(eu.connections.map((connection) => connection.token)).toEqual(['t1', 't2']);
    });

    it('failoverAfter failed attempts in a row on a region: the next region', async () => {
      const eu = await region('eu');
      const us = await region('us');
      await connect([eu.region, us.region], { failoverAfter: 2 });
      await eu.close(); // refuses connections from now on
      fakes.splice(fakes.indexOf(eu), 1);
      await until(() => client!.region === 'us' && client!.state === 'open', 'the failover');
      expect(reconnects.map(({ code, region: name }) => `${code} ${name}`)).toEqual(['1006 eu', '1006 us']);
    });
  });

  describe('geo.reconnect (the region drains)', () => {
    it('make before break: the next region is joined while the draining one still delivers; state stays open, every event is handed over once, every publish stored and acked once; then 4100', async () => {
      const logs = new FakeLogs();
      const [eu, us, asia] = [await region('eu', logs), await region('us', logs), await region('asia', logs)];
      await connect([eu.region, us.region, asia.region]);
      const states: string[] = [];
      client!.on('state', (state) => states.push(state));
      const seen = { r: [] as GeoEnvelope[], s: [] as GeoEnvelope[] };
      await client!.join('r', (event) => seen.r.push(event));
      await client!.join('s', (event) => seen.s.push(event));
      await client!.publish('r', 'chat.message', { text: 'before' }, 'p1');
      // p2 is in flight and never answered by eu; p3 is acked by eu late, maybe after us took over.
      eu.answer = (frame) => (frame.eventId === 'p2' ? 'silent' : { delayMs: 30 });
      const acks = [client!.publish('r', 'chat.message', { text: 'in flight' }, 'p2')];
      acks.push(client!.publish('s', 'chat.message', { text: 'acked late' }, 'p3'));
      await until(() => eu.ids().includes('p2') && eu.ids().includes('p3'), 'p2 and p3 sent to eu');
      // Other members keep publishing through the move, in both regions.
      let n = 0;
      const traffic = setInterval(() => (n++ % 2 ? us : eu).emit(n % 3 ? 'r' : 's'), 2);
      try {
        // The server suggests a region by its own configuration; the client's ranking knows better.
        eu.drain(asia.region);
        await until(() => eu.connections[0].closeCode !== undefined, 'the draining connection closed');
        expect(client!.region).toBe('us');
        const [p2, p3] = await within(Promise.all(acks), 3000, 'the publishes in flight');
        expect([p2.event_id, p3.event_id]).toEqual(['p2', 'p3']);
      } finally {
        clearInterval(traffic);
      }
      us.emit('r');
      await until(() => seen.r.length === logs.log('r').length && seen.s.length === logs.log('s').length, 'every event');
      expect(eu.connections[0].closeCode).toBe(GeoClientCloseCode.MOVING);
      expect([states, reconnects]).toEqual([[], []]);
      for (const room of ['r', 's'] as const) {
        expect(seen[room].map((event) => event.seq)).toEqual(logs.log(room).map((event) => event.seq));
        expect(new Set(logs.log(room).map((event) => event.event_id)).size).toBe(logs.log(room).length);
      }
      expect(logs.log('r').filter((event) => event.event_id === 'p2')).toHaveLength(1);
      expect(logs.log('s').filter((event) => event.event_id === 'p3')).toHaveLength(1);
      expect(client!.unacknowledged).toBe(0);
      expect(client!.consistency).toMatchObject({ duplicates: 0, regressions: 0, gaps: 0 });
      expect(us.joinRequests.map((request) => request.room).sort()).toEqual(['r', 's']);
      expect(us.ids()).toContain('p2'); // resent there, stored once
      expect(asia.connections).toHaveLength(0);
    });

    it('the next region refuses: the client stays on the draining one until it closes (1012), then fails over as usual', async () => {
      const logs = new FakeLogs();
      const [eu, us, asia] = [await region('eu', logs), await region('us', logs), await region('asia', logs)];
      await connect([eu.region, us.region, asia.region]);
      const events: number[] = [];
      await client!.join('r', (event) => events.push(event.seq!));
      us.refusing = true;
      eu.drain(us.region);
      await sleep(100); // the upgrade to us is refused (HTTP 503)
      expect([client!.state, client!.region]).toEqual(['open', 'eu']);
      eu.emit('r'); // still delivered by the draining region
      await until(() => events.length === 1, 'an event on the draining connection');
      eu.closeAll(GeoCloseCode.SERVICE_RESTART, 'drained');
      await until(() => client!.region === 'asia' && client!.state === 'open' && asia.joinRequests.length === 1, 'the failover');
      expect(reconnects.map(({ code, region: name }) => `${code} ${name}`)).toEqual(['1012 asia']);
      expect(asia.joinRequests).toEqual([{ room: 'r', since: 1, epoch: 'e1' }]);
    });

    it("with no other region known: follows the server's suggestion, make before break too", async () => {
      const logs = new FakeLogs();
      const eu = await region('eu', logs);
      const us = await region('us', logs); // not in the client's directory
      await connect(eu.regions);
      await client!.join('r', () => undefined);
      eu.drain(us.region);
      await until(() => client!.region === 'us' && us.joinRequests.length === 1, 'the move to the suggested region');
      await until(() => eu.connections[0].closeCode !== undefined, 'the draining connection closed');
      expect([reconnects, eu.connections[0].closeCode]).toEqual([[], GeoClientCloseCode.MOVING]);
      expect(us.joinRequests).toEqual([{ room: 'r', since: 0, epoch: 'e1' }]);
    });

    it('moveTo(): closes with 4100 and reconnects there at once', async () => {
      const [eu, us] = [await region('eu'), await region('us')];
      await connect([eu.region, us.region]);
      client!.moveTo('us');
      await until(() => client!.region === 'us', 'the move');
      expect(reconnects).toEqual([{ attempt: 0, delayMs: 0, region: 'us', code: GeoClientCloseCode.MOVING }]);
      expect(() => client!.moveTo('mars')).toThrow(/unknown region/);
    });
  });

  describe('liveness: a silent connection is abandoned', () => {
    it('no geo.welcome within twice heartbeatMs: abandoned with 4101 (NO_WELCOME), counted as a failed attempt', async () => {
      const eu = await region('eu');
      eu.welcome = (connection) => (eu.connections.indexOf(connection) === 0 ? 'silent' : {});
      const started = Date.now();
      await connect(eu.regions, { heartbeatMs: 50 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(95);
      expect(eu.connections).toHaveLength(2);
      await until(() => eu.connections[0].closeCode !== undefined, 'the close of the silent connection');
      expect(eu.connections[0].closeCode).toBe(1006); // Node: ws's terminate(), no close frame
    });

    it('in a browser (no terminate()): the region sees the close code 4101', async () => {
      const eu = await region('eu');
      eu.welcome = (connection) => (eu.connections.indexOf(connection) === 0 ? 'silent' : {});
      await connect(eu.regions, { heartbeatMs: 50, WebSocket: BrowserLikeWebSocket as unknown as WebSocketConstructor });
      await until(() => eu.connections[0].closeCode !== undefined, 'the close of the silent connection');
      expect(eu.connections[0].closeCode).toBe(GeoClientCloseCode.NO_WELCOME);
    });

    it('a host that accepts TCP but never answers the upgrade: abandoned (no crash), then the next region', async () => {
      const mute = await startMuteHost('mute');
      closers.push(mute.close);
      const eu = await region('eu');
      await connect([mute.region, eu.region], { heartbeatMs: 50, failoverAfter: 1 });
      expect(client!.region).toBe('eu');
      expect(mute.accepted()).toBe(1);
    });

    it('no frame for heartbeatMs + heartbeatTimeoutMs after the welcome (pings unanswered): abandoned with 4102 (SILENT); the rooms resume', async () => {
      const eu = await region('eu');
      await connect(eu.regions, { heartbeatMs: 40, heartbeatTimeoutMs: 40 });
      await client!.join('r', () => undefined);
      await until(() => client!.rttMs !== undefined, 'a pong');
      eu.answerPings = false;
      await until(() => reconnects.length === 1, 'the abandon', 2000);
      eu.answerPings = true;
      expect(reconnects[0]).toMatchObject({ region: 'eu', code: GeoClientCloseCode.SILENT });
      await until(() => eu.joinRequests.length === 2 && client!.state === 'open', 'the rejoin');
      expect(eu.open).toHaveLength(1);
    });
  });

  describe('liveness: a region that goes silent (a black hole) is left within heartbeatMs + heartbeatTimeoutMs', () => {
    it.each([
      [100, 100],
      [40, 200],
    ])(
      'heartbeatMs %i, heartbeatTimeoutMs %i: 4102 within the bound, then the next region, where every room resumes with no loss',
      async (heartbeatMs, heartbeatTimeoutMs) => {
        const logs = new FakeLogs();
        const [eu, us] = [await region('eu', logs), await region('us', logs)];
        await connect([eu.region, us.region], { heartbeatMs, heartbeatTimeoutMs, failoverAfter: 1 });
        const events: number[] = [];
        await client!.join('r', (event) => events.push(event.seq!));
        eu.emit('r');
        await until(() => events.length === 1, 'the first event');
        const mutedAt = Date.now();
        eu.mute();
        eu.emit('r'); // stored while the client cannot hear eu
        let detectedAt = 0;
        client!.on('reconnect', () => (detectedAt ||= Date.now()));
        await until(() => client!.region === 'us' && client!.state === 'open' && events.length === 2, 'the failover', 3000);
        const bound = heartbeatMs + heartbeatTimeoutMs;
        expect(detectedAt - mutedAt).toBeGreaterThanOrEqual(heartbeatTimeoutMs - 5);
        expect(detectedAt - mutedAt).toBeLessThanOrEqual(bound + 60); // timer and event-loop slack
        expect(reconnects).toEqual([{ attempt: 1, delayMs: expect.any(Number), region: 'us', code: GeoClientCloseCode.SILENT }]);
        expect(us.joinRequests).toEqual([{ room: 'r', since: 1, epoch: 'e1' }]);
        expect(events).toEqual([1, 2]);
      },
    );

    it('a connection that keeps receiving sends no ping; an idle one pings every heartbeatMs', async () => {
      const eu = await region('eu');
      await connect(eu.regions, { heartbeatMs: 60, heartbeatTimeoutMs: 60 });
      await client!.join('r', () => undefined);
      const pings = (): number => eu.connections[0].frames.filter((frame) => frame.event === 'geo.ping').length;
      const before = pings();
      const traffic = setInterval(() => eu.emit('r'), 15);
      await sleep(400);
      clearInterval(traffic);
      expect(pings()).toBe(before);
      await sleep(200);
      expect(pings()).toBeGreaterThanOrEqual(before + 2);
      expect(reconnects).toEqual([]);
    });

    it.each([0, -1, Number.NaN, '5000', 2 ** 31])('heartbeatMs or heartbeatTimeoutMs %p: INVALID_OPTIONS', (value) => {
      for (const name of ['heartbeatMs', 'heartbeatTimeoutMs'])
        expect(() => new GeoClient({ regions: [{ name: 'eu', url: 'http://eu.test' }], WebSocket, [name]: value })).toThrow(
          expect.objectContaining({ code: 'INVALID_OPTIONS', message: expect.stringContaining(name) }),
        );
    });
  });

  describe('close()', () => {
    it('settles everything: waiting joins and publishes reject CLOSED; later calls too; the region sees 1000', async () => {
      const eu = await region('eu');
      await connect(eu.regions);
      await client!.join('r', () => undefined);
      eu.answer = () => 'silent';
      eu.joinAnswer = () => 'silent';
      const sent = client!.publish('r', 'chat.message', { text: 'sent' }, 'a1');
      const queued = client!.publish('r', 'chat.message', { text: 'queued' }, 'a2');
      const joining = client!.join('never-answered', () => undefined);
      await until(() => eu.joins.length === 2 && eu.ids().length === 1, 'the frames sent');
      const states: string[] = [];
      client!.on('state', (state) => states.push(state));
      client!.close();
      client!.close(); // idempotent
      for (const pending of [sent, queued, joining] as Promise<unknown>[])
        await expect(within(pending, 1000, 'a pending call')).rejects.toMatchObject({ code: 'CLOSED' });
      await expect(client!.join('later', () => undefined)).rejects.toMatchObject({ code: 'CLOSED' });
      await expect(client!.publish('r', 'chat.message', {}, 'a3')).rejects.toMatchObject({ code: 'CLOSED' });
      expect(states).toEqual(['closed']);
      expect(client!.unacknowledged).toBe(0);
      await until(() => eu.connections[0].closeCode !== undefined, 'the close seen by the region');
      expect(eu.connections[0].closeCode).toBe(GeoClientCloseCode.CLOSED);
    });

    it('leaves no timer running (the process can exit): heartbeat, drift, token refresh, join and publish retries, welcome deadline', async () => {
      const eu = await region('eu');
      eu.welcome = () => ({ expires_at: new Date(Date.now() + 3_600_000).toISOString() }); // a token refresh is scheduled
      const timers = watchTimers();
      await connect(eu.regions, {
        heartbeatMs: 30_000,
        driftBackMs: 60_000,
        token: () => 'fresh',
        backoff: { baseMs: 5000, maxMs: 5000 },
      });
      await client!.join('r', () => undefined);
      eu.joinAnswer = () => ({ code: 'UNAVAILABLE' });
      eu.answer = () => ({ code: 'RATE_LIMITED' });
      void client!.join('retried', () => undefined).catch(() => undefined);
      void client!.publish('r', 'chat.message', {}, 'retried').catch(() => undefined);
      await until(() => eu.joins.includes('retried') && eu.ids().length >= 1, 'the refusals');
      expect(timers.active()).toBeGreaterThan(0);
      client!.close();
      await until(() => timers.active() === 0, 'every timer of the client to be gone', 1000);
    });

    it('while waiting to reconnect: no further attempt, no timer left', async () => {
      const eu = await region('eu');
      const timers = watchTimers();
      await connect(eu.regions, { backoff: { baseMs: 5000, maxMs: 5000 } });
      const random = jest.spyOn(Math, 'random').mockReturnValue(0.5); // the reconnect waits 2.5 s
      try {
        eu.dropAll();
        await until(() => reconnects.length === 1, 'the scheduled reconnect');
        expect(reconnects[0].delayMs).toBe(2500);
        client!.close();
        expect(client!.state).toBe('closed');
        await until(() => timers.active() === 0, 'the heartbeat and the reconnect timer to be gone', 1000);
        expect(eu.connections).toHaveLength(1);
      } finally {
        random.mockRestore();
      }
    });
  });
});
