import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { globalLog, redisTransport } from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';
import { startReplicated, startSentinels } from './support/redis-servers.js';
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
      expect(ack.code).toBe('UNAVAILABLE'); // retryable while no primary answers
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    console.log(`first append acked ${Date.now() - killedAt} ms after the primary was killed`);
    expect(ack?.seq).toEqual(expect.any(Number));

    // The live reader is told its log changed incarnation: it must rejoin.
    await waitFor(() => reader.errors().some((error) => error.code === 'UNAVAILABLE'), 'the reader to be told its room was reset', 15_000);
    const rejoined = await reader.join(room, { since: 10, epoch: joined.epoch });
    expect(rejoined.recovered).toBe(false);
    expect(rejoined.epoch).not.toBe(joined.epoch);
    const log = await deployment.region('us').transport.read(globalLog(room), 0, 100);
    const lost = 10 - log.events.filter((event) => (event.data as { text: string }).text.startsWith('before')).length;
    console.log(`acked before the failover and lost with the old primary: ${lost} of 10`);
    expect(log.events.filter((event) => event.event_id === eventId)).toHaveLength(1);
    writer.close();
    reader.close();
  }, 60_000);
});
