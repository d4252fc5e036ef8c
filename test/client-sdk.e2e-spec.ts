import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { GeoClient, type GeoEnvelope, type GeoRegion } from '@geo-ws/client';
import { globalLog } from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';
import { deployRegions, type Deployment } from './support/regions.js';
import { LinkProxy as TcpProxy } from '../apps/lab/src/topology/link-proxy.js';

/** Region RTTs for the tests: eu nearest, then us, then asia. */
const probe = async (region: GeoRegion) => ({ eu: 10, us: 50, asia: 120 })[region.name as 'eu'] ?? 999;

describe('client SDK against three regions in one process', () => {
  let deployment: Deployment;
  const clients: GeoClient[] = [];
  const connect = async (name: string, extra: Partial<Parameters<typeof GeoClient.connect>[0]> = {}) => {
    const client = await GeoClient.connect({
      directoryUrl: deployment.region('asia').url,
      WebSocket: WebSocket,
      probe,
      query: { name },
      backoff: { baseMs: 50, maxMs: 400 },
      ...extra,
    });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    deployment = await deployRegions(['asia', 'eu', 'us'], { delayMs: 20, geo: { drainGraceMs: 3000 } });
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    await deployment.close();
  });

  it('connects to the nearest region by median RTT, joins, publishes and receives in order', async () => {
    const room = `sdk-${randomUUID().slice(0, 6)}`;
    const alice = await connect('alice');
    expect(alice.region).toBe('eu');
    expect(alice.rankedRegions.map((region) => region.name)).toEqual(['eu', 'us', 'asia']);
    const bob = await connect('bob', { pinRegion: 'asia' });
    expect(bob.region).toBe('asia');
    const seen: GeoEnvelope[] = [];
    await bob.join(room, (event) => seen.push(event));
    await alice.join(room, () => undefined);
    const acks = await Promise.all([1, 2, 3].map((n) => alice.publish(room, 'note.add', { text: `m${n}` })));
    expect(acks.map((ack) => ack.seq)).toEqual([1, 2, 3]);
    await waitFor(() => seen.length === 3, 'three events in asia');
    expect(seen.map((event) => [event.seq, event.sender, event.region, (event.data as { text: string }).text])).toEqual([
      [1, 'alice', 'eu', 'm1'],
      [2, 'alice', 'eu', 'm2'],
      [3, 'alice', 'eu', 'm3'],
    ]);
  });

  it('outbox: the connection is cut between publish and ack; after reconnect the event exists once', async () => {
    const room = `outbox-${randomUUID().slice(0, 6)}`;
    const eu = deployment.region('eu');
    const link = await new TcpProxy({ host: '127.0.0.1', port: Number(new URL(eu.url).port) }).start();
    try {
      const regions = [{ name: 'eu', url: eu.url, wsUrl: `ws://127.0.0.1:${link.port}/ws` }];
      const carol = await connect('carol', { regions });
      await carol.join(room, () => undefined);
      link.setDelay(150); // the ack takes a while: time to cut the link under it
      const publishing = carol.publish(room, 'note.add', { text: 'exactly once' });
      await new Promise((resolve) => setTimeout(resolve, 100)); // sent; not acked yet
      link.cut();
      await new Promise((resolve) => setTimeout(resolve, 300));
      link.setDelay(0);
      link.restore();
      const ack = await publishing;
      expect(ack.seq).toBe(1);
      const log = await eu.transport.read(globalLog(room), 0, 10);
      expect(log.events.map((event) => (event.data as { text: string }).text)).toEqual(['exactly once']);
      expect(carol.unacknowledged).toBe(0);
    } finally {
      await link.stop();
    }
  });

  it('G6: a session saved by one region is restored by another, so a client that lost its state resumes', async () => {
    const room = `session-${randomUUID().slice(0, 6)}`;
    const writer = await connect('session-writer', { pinRegion: 'asia' });
    await writer.join(room, () => undefined);
    const first = await connect('dana', { pinRegion: 'eu' });
    const seenFirst: GeoEnvelope[] = [];
    await first.join(room, (event) => seenFirst.push(event));
    for (let n = 0; n < 3; n++) await writer.publish(room, 'note.add', { text: `before ${n}` });
    await waitFor(() => seenFirst.length === 3, 'the first three events');
    const sessionId = first.sessionId!;
    first.close(); // the server saves the session when the connection closes
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (let n = 0; n < 2; n++) await writer.publish(room, 'note.add', { text: `away ${n}` });

    // A new client object (no local positions, e.g. after a page reload) in another region.
    const again = await connect('dana', { pinRegion: 'us', sessionId });
    expect(again.sessionId).toBe(sessionId);
    const seenAgain: GeoEnvelope[] = [];
    const joined = await again.join(room, (event) => seenAgain.push(event));
    expect(joined.recovered).toBe(true);
    await waitFor(() => seenAgain.length === 2, 'the two missed events');
    expect(seenAgain.map((event) => (event.data as { text: string }).text)).toEqual(['away 0', 'away 1']);

    // Another identity cannot take over the session's positions.
    const intruder = await connect('eve', { pinRegion: 'us', sessionId });
    expect(intruder.sessionId).not.toBe(sessionId);
  });

  it('liveness: a region that goes silent (no close, no frames) is noticed by the heartbeat, and the client moves on', async () => {
    const room = `silent-${randomUUID().slice(0, 6)}`;
    const eu = deployment.region('eu');
    const link = await new TcpProxy({ host: '127.0.0.1', port: Number(new URL(eu.url).port) }).start();
    try {
      const us = deployment.region('us');
      const regions = [
        { name: 'eu', url: eu.url, wsUrl: `ws://127.0.0.1:${link.port}/ws` },
        { name: 'us', url: us.url, wsUrl: us.wsUrl },
      ];
      const client = await connect('frank', {
        regions,
        regionOrder: ['eu', 'us'],
        heartbeatMs: 200,
        heartbeatTimeoutMs: 300,
        failoverAfter: 1,
      });
      await client.join(room, () => undefined);
      expect(client.region).toBe('eu');
      const silentAt = Date.now();
      link.blackhole();
      await waitFor(() => client.region === 'us', 'the client to leave the silent region', 5000);
      const leftAfter = Date.now() - silentAt;
      console.log(`silent region left after ${leftAfter} ms (heartbeatMs 200 + heartbeatTimeoutMs 300)`);
      // Detected within 500 ms of the last frame, then one backoff delay and a welcome from us.
      expect(leftAfter).toBeLessThan(1500);
      expect((await client.publish(room, 'note.add', { text: 'from us' })).seq).toEqual(expect.any(Number));
    } finally {
      await link.stop();
    }
  });

  it('drift back: when a nearer region answers again the client moves to it without losing events', async () => {
    const room = `drift-${randomUUID().slice(0, 6)}`;
    const rtts: Record<string, number> = { asia: 300, eu: 200, us: 10 };
    const client = await connect('grace', { probe: async (region) => rtts[region.name], driftBackMs: 250 });
    expect(client.region).toBe('us');
    const seen: GeoEnvelope[] = [];
    await client.join(room, (event) => seen.push(event));
    const writer = await connect('drift-writer', { pinRegion: 'asia' });
    await writer.join(room, () => undefined);
    const writing = (async () => {
      for (let n = 0; n < 20; n++) {
        await writer.publish(room, 'note.add', { text: `n${n}` });
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    rtts.eu = 5; // eu is the nearest now
    await waitFor(() => client.region === 'eu', 'the client to drift to eu', 5000);
    await writing;
    await waitFor(() => seen.length === 20, 'all 20 events');
    expect(seen.map((event) => event.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('drain: a region shutting down sends its clients elsewhere before it exits; nothing is lost', async () => {
    const room = `drain-${randomUUID().slice(0, 6)}`;
    const writer = await connect('drain-writer', { pinRegion: 'asia' });
    const movers = await Promise.all([1, 2, 3].map((n) => connect(`mover-${n}`, { regionOrder: ['us', 'eu', 'asia'] })));
    expect(movers.map((client) => client.region)).toEqual(['us', 'us', 'us']);
    const received = movers.map(() => [] as GeoEnvelope[]);
    await Promise.all(movers.map((client, i) => client.join(room, (event) => received[i].push(event))));
    await writer.join(room, () => undefined);
    const total = 40;
    const writing = (async () => {
      for (let n = 0; n < total; n++) {
        await writer.publish(room, 'note.add', { text: `n${n}` });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const closing = deployment.region('us').app.close(); // what SIGTERM with enableShutdownHooks does
    await waitFor(() => movers.every((client) => client.region === 'eu'), 'the clients to move to eu before us exits', 5000);
    await writing;
    await closing;
    await waitFor(() => received.every((events) => events.length === total), 'every event on every moved client', 10_000);
    for (const events of received) expect(events.map((event) => event.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });
});
