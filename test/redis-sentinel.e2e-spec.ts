import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { globalLog, redisTransport, type GeoTransport } from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';
import { startReplicated, startSentinels } from '../apps/lab/src/topology/redis-servers.js';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

/**
 * Sentinel failover: the primary is killed, a replica is promoted, the app follows it.
 * Replication is asynchronous, so the promoted replica may lack events the old primary
 * acknowledged. The epoch changes exactly then (some process saw a write the dataset no
 * longer has) and resumes are told `recovered: false`; a failover that kept every
 * acknowledged event keeps the epoch, and live members go on without a notice.
 */
describe('Redis Sentinel: the primary dies, a replica takes over', () => {
  let servers: Awaited<ReturnType<typeof startReplicated>>;
  let sentinels: Awaited<ReturnType<typeof startSentinels>>;
  let deployment: Deployment;

  beforeAll(async () => {
    servers = await startReplicated(2);
    sentinels = await startSentinels(servers.primary);
    const primary = { sentinels: sentinels.ports.map((port) => ({ host: '127.0.0.1', port })), name: 'mymaster' };
    deployment = await deployRegions(['eu', 'us'], { transport: () => redisTransport({ primary, namespace: 'sentinel' }) });
  }, 60_000);

  afterAll(async () => {
    await deployment?.close();
    await sentinels?.stop();
    await servers?.stop();
  });

  it('appends resume on the promoted replica, and a resume across it is recovered exactly when nothing acked was lost', async () => {
    const room = `failover-${randomUUID().slice(0, 6)}`;
    const writer = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'writer' });
    const reader = await WsTestClient.connect(deployment.region('us').wsUrl, { name: 'reader' });
    await writer.join(room);
    const joined = await reader.join(room);
    const before: string[] = [];
    for (let n = 0; n < 10; n++) {
      const ack = await writer.publish('note.add', room, { text: `before ${n}` });
      expect(ack.seq).toBe(n + 1);
      before.push(ack.event_id);
    }
    await reader.waitForEvents(room, 10);

    const killedAt = Date.now();
    await servers.primary.kill();
    let ack: Awaited<ReturnType<WsTestClient['publish']>> | undefined;
    const eventId = randomUUID();
    while (Date.now() - killedAt < 30_000) {
      ack = await writer.publish('note.add', room, { text: 'after the failover' }, eventId);
      if (typeof ack.seq === 'number') break;
      // Retryable while no primary answers; if the promoted replica lost acked events, the
      // room's epoch changes and every member, the writer too, is asked to join again.
      expect(['UNAVAILABLE', 'NOT_JOINED']).toContain(ack.code);
      if (ack.code === 'NOT_JOINED') await writer.join(room).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    console.log(`first append acked ${Date.now() - killedAt} ms after the primary was killed`);
    expect(ack?.seq).toEqual(expect.any(Number));

    // Connections may still be settling on the new primary: UNAVAILABLE is retryable.
    const resumer = await WsTestClient.connect(deployment.region('us').wsUrl, { name: 'resumer' });
    let rejoined: Awaited<ReturnType<WsTestClient['join']>> | undefined;
    for (let attempt = 0; attempt < 20 && !rejoined; attempt++) {
      rejoined = await resumer.join(room, { since: 10, epoch: joined.epoch }).catch(() => undefined);
      if (!rejoined) expect(resumer.errors().at(-1)?.code).toBe('UNAVAILABLE');
    }
    if (!rejoined) throw new Error('the resumer could not rejoin');

    // What Redis kept is up to its asynchronous replication (a second promotion during a
    // slow failover can drop what the first one acked); geo-ws's part is to say so, and
    // never to store an event twice.
    // The us transport may still be reconnecting to the promoted primary (or to a second one): retry.
    let log: Awaited<ReturnType<GeoTransport['read']>> | undefined;
    for (const started = Date.now(); !log && Date.now() - started < 15_000; await new Promise((resolve) => setTimeout(resolve, 200))) {
      log = await deployment
        .region('us')
        .transport.read(globalLog(room), 0, 100)
        .catch(() => undefined);
    }
    if (!log) throw new Error('the log stayed unreadable for 15 s after the failover');
    const ids = log.events.map((event) => event.event_id);
    const lost = [...before, eventId].filter((id) => !ids.includes(id)).length;
    console.log(`acked and lost in the failover: ${lost} of 11; resume recovered: ${rejoined.recovered}`);
    expect(new Set(ids).size).toBe(ids.length);
    if (lost > 0) {
      expect(rejoined.recovered).toBe(false);
      expect(rejoined.epoch).not.toBe(joined.epoch);
      await waitFor(() => reader.errors().some((error) => error.code === 'UNAVAILABLE'), 'the reader to be told', 15_000);
    } else {
      // Nothing acked was lost: same epoch, the resume gets exactly what followed seq 10,
      // and the live reader got the new event without being asked to rejoin.
      expect(rejoined).toMatchObject({ recovered: true, epoch: joined.epoch });
      const after = log.events.filter((event) => event.seq > 10).map((event) => event.event_id);
      await resumer.waitForEvents(room, after.length);
      expect(resumer.events(room).map((event) => event.event_id)).toEqual(after);
      await reader.waitForEvents(room, 11);
      expect(reader.events(room).map((event) => event.event_id)).toEqual(ids);
      expect(reader.errors()).toEqual([]);
    }
    writer.close();
    reader.close();
    resumer.close();
  }, 60_000);
});
