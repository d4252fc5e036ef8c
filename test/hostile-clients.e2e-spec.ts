import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { GeoMetrics, globalLog, type GeoWsLimits } from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

/**
 * Appends `count` events straight to a room's log (faster than publishing them one by one),
 * `batch` at a time with `pauseMs` between batches.
 */
async function fill(deployment: Deployment, room: string, count: number, text = 'x', batch = 500, pauseMs = 0): Promise<void> {
  const transport = deployment.region('eu').transport;
  for (let from = 0; from < count; from += batch) {
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    await Promise.all(
      Array.from({ length: Math.min(batch, count - from) }, () =>
        transport.append(globalLog(room), {
          event_id: randomUUID(),
          room_id: room,
          type: 'note.add',
          sender: 'filler',
          timestamp: new Date().toISOString(),
          region: 'eu',
          data: { text },
        }),
      ),
    );
  }
}

/** A raw socket whose reading can be stopped (`pause()`), to play a client that stops reading. */
async function rawClient(url: string, name: string): Promise<{ socket: WebSocket; closeCode: Promise<number> }> {
  const socket = new WebSocket(`${url}?name=${name}`);
  socket.on('error', () => undefined);
  const closeCode = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    socket.once('message', () => resolve()); // geo.welcome
    socket.once('unexpected-response', () => reject(new Error('refused')));
  });
  return { socket, closeCode };
}

const limits: GeoWsLimits = {
  replay: { perConnection: { perSecond: 2000, burst: 2000 } },
  maxBufferedBytes: 2 * 1024 * 1024,
  maxBufferedBytesTotal: 64 * 1024 * 1024,
};

/**
 * Clients that replay too much, stop reading or send garbage: each is bounded or closed,
 * and a bystander in the same room keeps getting its acks and events.
 */
describe('hostile clients: replay floods, re-joins, slow readers, garbage', () => {
  let deployment: Deployment;
  let bystander: WsTestClient;
  const room = `big-${randomUUID().slice(0, 6)}`;

  beforeAll(async () => {
    // Metrics on (registered only): they run under this load too, and count the slow consumer.
    deployment = await deployRegions(['eu', 'us'], {
      delayMs: 2,
      geo: { limits, log: { retention: { maxEvents: 20_000 } }, metrics: { path: false } },
    });
    await fill(deployment, room, 10_000);
    bystander = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'bystander' });
    await bystander.join(room);
  }, 60_000);

  afterAll(async () => {
    bystander?.close();
    await deployment?.close();
  });

  it('a re-join cancels the replay of the earlier join: no event at or below the new geo.joined seq follows it', async () => {
    // In us, 2 ms from the log's home: each page of the replay is a round trip, as with a broker.
    const client = await WsTestClient.connect(deployment.region('us').wsUrl, { name: 'rejoiner' });
    client.send('geo.join', { room, since: 0 });
    client.send('geo.join', { room }); // live only, handled while the first replay still runs
    const isGlobalJoin = (data: any) => data.room === room && !data.scope;
    await client.next('geo.joined', isGlobalJoin);
    const second = await client.next('geo.joined', isGlobalJoin);
    const joinedAt = client.frames.findLastIndex((frame) => frame.event === 'geo.joined' && isGlobalJoin(frame.data));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = client.frames.slice(joinedAt + 1).filter((frame) => frame.data?.room_id === room);
    expect(after.filter((frame) => frame.data.seq <= second.seq).map((frame) => frame.data.seq)).toEqual([]);
    client.close();
  });

  it('one connection re-joining from since 0 as fast as its frame rate allows gets its replay allowance, not a flood; the bystander is served', async () => {
    const attacker = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'replayer' });
    const started = Date.now();
    const durationMs = 3000;
    const acks: Promise<unknown>[] = [];
    while (Date.now() - started < durationMs) {
      attacker.send('geo.join', { room, since: 0 });
      if (acks.length < 30) acks.push(bystander.publish('note.add', room, { text: `during the flood ${acks.length}` }));
      await new Promise((resolve) => setTimeout(resolve, 22)); // ~45 re-joins a second, inside the frame rate
    }
    const elapsedS = (Date.now() - started) / 1000;
    const replayed = attacker.events(room).length;
    // The allowance: a burst of 2,000 plus 2,000 a second, and one page (500) in flight.
    const allowance = 2000 + 2000 * elapsedS + 500;
    console.log(
      `replay flood: ${replayed} events replayed in ${elapsedS.toFixed(1)} s (allowance ${Math.round(allowance)}; unbounded it would be ~${Math.round(45 * elapsedS * 10_000)})`,
    );
    expect(replayed).toBeLessThanOrEqual(allowance);
    const answers = (await Promise.all(acks)) as { seq?: number }[];
    expect(answers.every((answer) => typeof answer.seq === 'number')).toBe(true);
    attacker.close();
  }, 30_000);

  it('a client that stops reading is closed (1013) or dropped within seconds, not left holding memory; the bystander gets every event', async () => {
    const server = deployment.region('eu').server;
    const stalled = await rawClient(deployment.region('eu').wsUrl, 'stalled');
    stalled.socket.send(JSON.stringify({ event: 'geo.join', data: { room } }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    stalled.socket.pause();
    const before = server.connectionCount;
    const seen = bystander.events(room).length;
    // 12 MB at ~15 MB/s: a reading client keeps up, a stalled one passes kernel buffers and its 2 MiB.
    await fill(deployment, room, 400, 'y'.repeat(30_000), 10, 20);
    await waitFor(() => server.connectionCount === before - 1, 'the server to drop the stalled client', 10_000);
    stalled.socket.resume();
    expect([1013, 1006]).toContain(await stalled.closeCode);
    const exposition = await deployment.region('eu').app.get(GeoMetrics).registry.metrics();
    expect(/^geows_slow_consumer_closes_total\{region="eu"\} (\d+)$/m.exec(exposition)?.[1]).toBe('1');
    await bystander.waitForEvents(room, seen + 400, 20_000);
    expect(bystander.isOpen).toBe(true);
  }, 60_000);

  it('many readers that stall together are cut back to the instance-wide cap (limits.maxBufferedBytesTotal)', async () => {
    const capped = await deployRegions(['eu'], {
      geo: { limits: { maxBufferedBytes: 64 * 1024 * 1024, maxBufferedBytesTotal: 4 * 1024 * 1024 } },
    });
    try {
      const server = capped.region('eu').server;
      const cappedRoom = `capped-${randomUUID().slice(0, 6)}`;
      const watcher = await WsTestClient.connect(capped.region('eu').wsUrl, { name: 'watcher' });
      await watcher.join(cappedRoom);
      const stalled = await Promise.all(Array.from({ length: 4 }, (_, i) => rawClient(capped.region('eu').wsUrl, `stalled-${i}`)));
      for (const { socket } of stalled) socket.send(JSON.stringify({ event: 'geo.join', data: { room: cappedRoom } }));
      await new Promise((resolve) => setTimeout(resolve, 200));
      for (const { socket } of stalled) socket.pause();
      await fill(capped, cappedRoom, 400, 'z'.repeat(30_000), 10, 20); // 12 MB to each of the four
      await waitFor(() => server.connectionCount < 5, 'the biggest stalled readers to be closed', 10_000);
      expect(watcher.isOpen).toBe(true);
      await watcher.waitForEvents(cappedRoom, 400, 20_000);
      for (const { socket } of stalled) socket.terminate();
      watcher.close();
    } finally {
      await capped.close();
    }
  }, 60_000);

  it('a connection that keeps sending garbage is closed (1008) after its refusal budget, not answered for ever', async () => {
    const junk = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'junk' });
    for (let i = 0; i < 5000; i++) junk.sendRaw('{"event": ');
    expect(await junk.waitForClose(10_000)).toBe(1008);
    const errors = junk.errors().length;
    console.log(`garbage flood: 5000 malformed frames, ${errors} geo.error answers, then 1008`);
    expect(errors).toBeLessThanOrEqual(501);
    expect(errors).toBeGreaterThan(0);
    const ok = await bystander.publish('note.add', room, { text: 'after the garbage' });
    expect(ok.seq).toEqual(expect.any(Number));
  });

  it('JSON nested 2,000 and 5,000 deep (4 and 10 KB) is MALFORMED_FRAME, never INTERNAL, and the connection stays usable', async () => {
    const client = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'deep' });
    await client.join(room);
    for (const depth of [2000, 5000]) {
      const eventId = randomUUID();
      client.sendRaw(
        `{"event":"note.add","data":{"event_id":"${eventId}","room_id":"${room}","data":{"text":${'['.repeat(depth)}${']'.repeat(depth)}}}}`,
      );
      expect((await client.next('geo.error')).code).toBe('MALFORMED_FRAME');
    }
    expect((await client.publish('note.add', room, { text: 'still fine' })).seq).toEqual(expect.any(Number));
    client.close();
  });

  it('the bystander saw no error and every event once, in order', async () => {
    const events = bystander.events(room);
    expect(bystander.errors()).toEqual([]);
    expect(events.map((event) => event.seq)).toEqual(Array.from({ length: events.length }, (_, i) => events[0].seq! + i));
  });
});
