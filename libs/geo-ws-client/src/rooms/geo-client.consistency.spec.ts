import { afterEach, describe, expect, it, jest } from '@jest/globals';
import type { Anomaly } from '../geo-client-events.js';
import { GeoClient, type GeoClientOptions } from '../geo-client.js';
import type { GeoEnvelope, GeoRegion } from '../protocol.js';
import { FakeRegion, TEST_CLIENT_OPTIONS, testEnvelope as envelope, until, within, type FakeConnection } from '../testing/index.js';

/**
 * Consistency tracked by the client (docs/CLIENT.md, "Consistency"): duplicates,
 * regressions and gaps in what a region delivers are counted and reported once, never
 * handed to the app; replays after a resume, `recovered: false` and a new epoch are not
 * anomalies; `geo.report` carries the counts every `report_ms` of `geo.welcome`.
 */

describe('GeoClient consistency (fake regions over a real WebSocket)', () => {
  const fakes: FakeRegion[] = [];
  let client: GeoClient | undefined;
  let anomalies: Anomaly[] = [];

  const region = async (name = 'eu'): Promise<FakeRegion> => {
    const fake = await FakeRegion.start({ name });
    fakes.push(fake);
    return fake;
  };

  const connect = async (regions: GeoRegion[], options: Partial<GeoClientOptions> = {}): Promise<GeoClient> => {
    client = await within(GeoClient.connect({ regions, ...TEST_CLIENT_OPTIONS, ...options }), 3000, 'connect()');
    anomalies = [];
    client.on('anomaly', (anomaly) => anomalies.push(anomaly));
    return client;
  };

  /** Joins `room` and collects what its handler receives, as `seq:event_id`. */
  const joinCollecting = async (room: string) => {
    const received: string[] = [];
    await within(
      client!.join(room, (event) => received.push(`${event.seq}:${event.event_id}`)),
      2000,
      `join ${room}`,
    );
    return received;
  };

  /** Sends the envelopes to every open connection, then an ephemeral barrier, and waits for the barrier (one socket keeps its order). */
  let barriers = 0;
  const deliver = async (fake: FakeRegion, received: string[], frames: GeoEnvelope[]): Promise<void> => {
    const barrier = envelope(frames[0]?.room_id ?? 'lobby', null, { event_id: `barrier${++barriers}` });
    for (const frame of [...frames, barrier]) fake.sendAll(frame.type, frame);
    await until(() => received.includes(`null:${barrier.event_id}`), 'the barrier');
    received.splice(received.indexOf(`null:${barrier.event_id}`), 1);
  };

  afterEach(async () => {
    jest.restoreAllMocks();
    client?.close();
    client = undefined;
    await Promise.all(fakes.splice(0).map((fake) => fake.close()));
  });

  it('a duplicate, a regression and a gap are each counted and emitted once; the handler never sees the duplicate or the regression', async () => {
    const eu = await region();
    eu.contiguous = true;
    await connect(eu.regions);
    const lobby = await joinCollecting('lobby');
    await deliver(eu, lobby, [
      envelope('lobby', 1),
      envelope('lobby', 2),
      envelope('lobby', 2), // the same event again: duplicate
      envelope('lobby', 1, { event_id: 'other' }), // an event at a seq already passed: regression
      envelope('lobby', 5), // 3 and 4 skipped: gap (delivered)
      envelope('lobby', 6, { event_id: 'e5' }), // e5 stored again under another seq: duplicate
      envelope('lobby', 7), // right after 6: fine
    ]);
    expect(lobby).toEqual(['1:e1', '2:e2', '5:e5', '7:e7']);
    expect(anomalies).toEqual([
      { kind: 'duplicate', room: 'lobby', seq: 2, expected: 3, eventId: 'e2' },
      { kind: 'regression', room: 'lobby', seq: 1, expected: 3, eventId: 'other' },
      { kind: 'gap', room: 'lobby', seq: 5, expected: 3, eventId: 'e5' },
      { kind: 'duplicate', room: 'lobby', seq: 6, expected: 6, eventId: 'e5' },
    ]);
    expect(client!.consistency).toEqual({ events: 4, duplicates: 2, regressions: 1, gaps: 1 });
    // Ephemeral events are not room-log events: not counted (the barriers above were some).
  });

  it('the regional log is checked on its own (its own seq series, scope in the anomaly)', async () => {
    const eu = await region();
    await connect(eu.regions);
    const lobby = await joinCollecting('lobby');
    eu.sendAll('geo.joined', { room: 'lobby', scope: 'regional', seq: 0, epoch: 'g', recovered: true, contiguous: true });
    await deliver(eu, lobby, [
      envelope('lobby', 1),
      envelope('lobby', 1, { event_id: 'r1', scope: 'regional' }), // seq 1 again, but of the regional log
      envelope('lobby', 3, { event_id: 'r3', scope: 'regional' }),
    ]);
    expect(lobby).toEqual(['1:e1', '1:r1', '3:r3']);
    expect(anomalies).toEqual([{ kind: 'gap', room: 'lobby', scope: 'regional', seq: 3, expected: 2, eventId: 'r3' }]);
  });

  it('without contiguous in geo.joined (NATS numbers seqs with gaps) a skipped seq is no gap; duplicates and regressions still count', async () => {
    const eu = await region();
    await connect(eu.regions);
    const lobby = await joinCollecting('lobby');
    await deliver(eu, lobby, [envelope('lobby', 3), envelope('lobby', 9), envelope('lobby', 9), envelope('lobby', 4)]);
    expect(lobby).toEqual(['3:e3', '9:e9']);
    expect(anomalies.map((anomaly) => anomaly.kind)).toEqual(['duplicate', 'regression']);
    expect(client!.consistency).toEqual({ events: 2, duplicates: 1, regressions: 1, gaps: 0 });
  });

  it('no anomaly: a replay after a resume, a join again that replays what the client has, recovered: false, a new epoch', async () => {
    const eu = await region();
    eu.contiguous = true;
    await connect(eu.regions);
    const gaps: unknown[] = [];
    client!.on('gap', (gap) => gaps.push(gap));
    const lobby = await joinCollecting('lobby');
    for (let i = 0; i < 3; i++) eu.emit('lobby');
    await until(() => lobby.length === 3, 'three live events');

    // Resume after a lost connection: the replay of what was missed.
    await eu.away(client!);
    eu.emit('lobby');
    eu.emit('lobby');
    eu.resume();
    await until(() => lobby.length === 5, 'the replay of 4 and 5');
    expect(eu.joinRequests.at(-1)).toMatchObject({ since: 3 });

    // A join again on the same connection, answered after a live event: its replay repeats it.
    eu.joinAnswer = () => 'silent';
    const again = client!.join('lobby', () => undefined);
    await until(() => eu.joinRequests.length === 3, 'the second join');
    expect(eu.joinRequests.at(-1)).toMatchObject({ since: 5 });
    const sixth = eu.emit('lobby'); // live, before the answer
    await until(() => lobby.length === 6, 'the live event');
    eu.sendAll('geo.joined', { room: 'lobby', seq: 6, epoch: 'e1', recovered: true, contiguous: true });
    await within(again, 1000, 'the second join');
    await deliver(eu, lobby, [sixth]); // the replay from 5: 6 again, already delivered
    expect(anomalies).toEqual([]);
    await deliver(eu, lobby, [sixth]); // but twice in one stream is a duplicate
    expect(anomalies.map((anomaly) => anomaly.kind)).toEqual(['duplicate']);
    anomalies = [];
    eu.joinAnswer = () => 'ok';

    // Retention removed events the client had not had: recovered: false, then what is left.
    await eu.away(client!);
    for (let i = 0; i < 4; i++) eu.emit('lobby'); // 7..10
    eu.logs.trim('lobby', 8);
    eu.resume();
    await until(() => lobby.length === 8, 'the retained 9 and 10');
    expect(lobby.slice(-2)).toEqual(['9:x9', '10:x10']);

    // The log is lost and starts again as another epoch, with the same event ids (x1, x2).
    await eu.away(client!);
    eu.logs.reset('lobby', 'e2');
    eu.emit('lobby');
    eu.emit('lobby');
    eu.resume();
    await until(() => lobby.length === 10, 'the new epoch from its start');
    expect(lobby.slice(-2)).toEqual(['1:x1', '2:x2']);
    eu.emit('lobby');
    await until(() => lobby.length === 11, 'a live event of the new epoch');

    expect(gaps).toEqual([
      { room: 'lobby', epoch: 'e1' },
      { room: 'lobby', epoch: 'e2' },
    ]);
    expect(anomalies).toEqual([]);
    expect(client!.consistency).toEqual({ events: 11, duplicates: 1, regressions: 0, gaps: 0 });
  });

  describe('geo.report', () => {
    /** The client's `setInterval` calls, passed through; a tick can be run by hand. */
    const spyIntervals = () => {
      const real = globalThis.setInterval;
      const calls: { ms: number; tick: () => void; handle: ReturnType<typeof setInterval> }[] = [];
      jest.spyOn(globalThis, 'setInterval').mockImplementation(((tick: () => void, ms: number) => {
        const handle = real(tick, ms);
        calls.push({ ms, tick, handle });
        return handle;
      }) as typeof setInterval);
      const cleared = jest.spyOn(globalThis, 'clearInterval');
      return { calls, cleared, timer: (ms: number) => calls.filter((call) => call.ms === ms) };
    };

    const reports = (connection: FakeConnection) =>
      connection.frames.filter((frame) => frame.event === 'geo.report').map((frame) => frame.data as unknown);

    /** Waits until the region got a frame sent after everything before it (a join: one socket keeps its order). */
    let fences = 0;
    const fence = async (connection: FakeConnection): Promise<void> => {
      const room = `fence${++fences}`;
      void client!.join(room, () => undefined).catch(() => undefined); // rejected CLOSED if the test closes first
      await until(() => connection.frames.some((frame) => frame.event === 'geo.join' && frame.data.room === room), 'the fence');
    };

    it('every report_ms, the counts since the last report; none when nothing happened; the timer is unref’d and cleared with the connection', async () => {
      const eu = await region();
      eu.welcome = () => ({ report_ms: 7000 });
      const intervals = spyIntervals();
      await connect(eu.regions);
      const [report] = intervals.timer(7000);
      expect(report).toBeDefined();
      expect(report.handle.hasRef()).toBe(false); // it does not keep a Node process alive
      const connection = eu.connections[0];
      const lobby = await joinCollecting('lobby');

      report.tick(); // nothing happened yet
      await fence(connection);
      expect(reports(connection)).toEqual([]);

      await deliver(eu, lobby, [envelope('lobby', 1), envelope('lobby', 2), envelope('lobby', 2)]);
      report.tick();
      report.tick(); // nothing new since
      await fence(connection);
      expect(reports(connection)).toEqual([{ events: 2, duplicates: 1, regressions: 0, gaps: 0 }]);

      await deliver(eu, lobby, [envelope('lobby', 3), envelope('lobby', 0, { event_id: 'old' })]);
      report.tick();
      await fence(connection);
      expect(reports(connection)).toEqual([
        { events: 2, duplicates: 1, regressions: 0, gaps: 0 },
        { events: 1, duplicates: 0, regressions: 1, gaps: 0 },
      ]);

      // A new connection: the old one's timer is cleared, the next welcome starts another; nothing counted is lost.
      await eu.away(client!);
      expect(intervals.cleared).toHaveBeenCalledWith(report.handle);
      eu.sendAll('chat.message', envelope('lobby', 4)); // nobody is connected: nothing
      eu.resume();
      await until(() => client!.state === 'open' && intervals.timer(7000).length === 2, 'the second connection');
      const second = eu.connections[1];
      await until(() => second.rooms.has('lobby'), 'the rejoin');
      await deliver(eu, lobby, [envelope('lobby', 4)]);
      intervals.timer(7000)[1].tick();
      await fence(second);
      expect(reports(second)).toEqual([{ events: 1, duplicates: 0, regressions: 0, gaps: 0 }]);

      // close(): what happened since the last report goes in a last one, and the timer is cleared.
      await deliver(eu, lobby, [envelope('lobby', 5)]);
      client!.close();
      expect(intervals.cleared).toHaveBeenCalledWith(intervals.timer(7000)[1].handle);
      await until(() => reports(second).length === 2, 'the last report');
      expect(reports(second)[1]).toEqual({ events: 1, duplicates: 0, regressions: 0, gaps: 0 });
    });

    it('no report_ms in geo.welcome (the server has no metrics), or an unusable one: no timer, no geo.report', async () => {
      for (const welcome of [{}, { report_ms: '1000' }, { report_ms: -5 }, { report_ms: null }]) {
        const eu = await region();
        eu.welcome = () => welcome;
        const intervals = spyIntervals();
        await connect(eu.regions);
        const lobby = await joinCollecting('lobby');
        await deliver(eu, lobby, [envelope('lobby', 1), envelope('lobby', 1)]);
        expect(client!.consistency).toEqual({ events: 1, duplicates: 1, regressions: 0, gaps: 0 });
        expect(intervals.calls).toEqual([]); // no report timer (the heartbeat is a timeout)
        await fence(eu.connections[0]);
        client!.close();
        await until(() => eu.connections[0].closeCode !== undefined, 'the close');
        expect(reports(eu.connections[0])).toEqual([]);
        jest.restoreAllMocks();
      }
    });

    it('a report_ms below 100 ms is taken as 100 ms (a misconfigured server is not flooded)', async () => {
      const eu = await region();
      eu.welcome = () => ({ report_ms: 1 });
      const intervals = spyIntervals();
      await connect(eu.regions);
      expect(intervals.calls.map((call) => call.ms)).toContain(100);
    });
  });
});
