import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { globalLog, redisTransport } from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';
import { startReplicated, startSentinels } from '../apps/lab/src/topology/redis-servers.js';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

/**
 * Sentinel failover: the primary is killed, a replica is promoted, the app follows it.
 * Replication is asynchronous, so the log may have lost acknowledged events: the epoch
 * changes and resumes are told `recovered: false` instead of silently missing them.
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

  it('appends resume on the promoted replica, and a resume across the failover says recovered: false', async () => {
    const room = `failover-${randomUUID().slice(0, 6)}`;
    const writer = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'writer' });
    const reader = await WsTestClient.connect(deployment.region('us').wsUrl, { name: 'reader' });
    await writer.join(room);
    const joined = await reader.join(room);
    for (let n = 0; n < 10; n++) expect((await writer.publish('note.add', room, { text: `before ${n}` })).seq).toBe(n + 1);
    await reader.waitForEvents(room, 10);

    const killedAt = Date.now();
    await servers.primary.kill();
    let ack: Awaited<ReturnType<WsTestClient['publish']>> | undefined;
    const eventId = randomUUID();
    while (Date.now() - killedAt < 30_000) {
      ack = await writer.publish('note.add', room, { text: 'after the failover' }, eventId);
      if (typeof ack.seq === 'number') break;
      // Retryable while no primary answers; once the new primary is seen the room's epoch
      // changes and every member, the writer too, is asked to join again.
      expect(['UNAVAILABLE', 'NOT_JOINED']).toContain(ack.code);
      if (ack.code === 'NOT_JOINED') await writer.join(room).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    console.log(`first append acked ${Date.now() - killedAt} ms after the primary was killed`);
    expect(ack?.seq).toEqual(expect.any(Number));

    // The live reader is told its log changed incarnation: it must rejoin.
    await waitFor(() => reader.errors().some((error) => error.code === 'UNAVAILABLE'), 'the reader to be told its room was reset', 15_000);
    // Connections may still be settling on the new primary: UNAVAILABLE is retryable.
    let rejoined: Awaited<ReturnType<WsTestClient['join']>> | undefined;
    for (let attempt = 0; attempt < 20 && !rejoined; attempt++) {
      rejoined = await reader.join(room, { since: 10, epoch: joined.epoch }).catch(() => undefined);
      if (!rejoined) expect(reader.errors().at(-1)?.code).toBe('UNAVAILABLE');
    }
    if (!rejoined) throw new Error('the reader could not rejoin');
    expect(rejoined.recovered).toBe(false);
    expect(rejoined.epoch).not.toBe(joined.epoch);
    // What Redis kept is up to its asynchronous replication (a second promotion during a
    // slow failover can drop what the first one acked); geo-ws's part is to say so (above)
    // and never to store an event twice.
    const log = await deployment.region('us').transport.read(globalLog(room), 0, 100);
    const kept = (text: string) => log.events.filter((event) => (event.data as { text: string }).text.startsWith(text)).length;
    console.log(`acked and lost in the failover: ${10 - kept('before')} of 10 before it, ${1 - kept('after')} of 1 after it`);
    expect(log.events.filter((event) => event.event_id === eventId).length).toBeLessThanOrEqual(1);
    expect(new Set(log.events.map((event) => event.event_id)).size).toBe(log.events.length);
    writer.close();
    reader.close();
  }, 60_000);
});
