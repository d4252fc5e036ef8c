import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { globalLog } from '@geo-ws/nest';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

/**
 * A join whose room feed stops before the outcome is known (its log is reset while the
 * join waits for the connection's replay allowance) must still be answered, and must not
 * hold the connection's later frames: they run one after another, so a join left hanging
 * froze the client for good (found by the Redis Sentinel e2e: a rejoin during the failover
 * was never answered, nor anything the client sent after it).
 */
describe('join races', () => {
  let deployment: Deployment;
  const clients: WsTestClient[] = [];
  const room = (name: string) => `${name}-${randomUUID().slice(0, 6)}`;

  beforeAll(async () => {
    deployment = await deployRegions(['eu'], {
      geo: {
        limits: {
          rate: { perSecond: 10_000, burst: 10_000 },
          // One connection may replay 5 events at once, then 1 a second: a second replay waits.
          replay: { perConnection: { perSecond: 1, burst: 5 } },
        },
      },
    });
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    await deployment.close();
  });

  it('a join whose feed stops while it waits to replay is refused (UNAVAILABLE), and the connection keeps working', async () => {
    const writer = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'writer' });
    const reader = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'reader' });
    const bystander = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'bystander' });
    clients.push(writer, reader, bystander);
    const [first, second] = [room('first'), room('second')];
    await writer.join(first);
    await writer.join(second);
    await bystander.join(second);
    for (let n = 0; n < 20; n++) await writer.publish('note.add', first, { text: `first ${n}` });
    for (let n = 0; n < 3; n++) await writer.publish('note.add', second, { text: `second ${n}` });

    // The first replay spends the reader's allowance (20 events against a burst of 5)...
    expect(await reader.join(first, { since: 0 })).toMatchObject({ recovered: true, seq: 20 });
    // ...so the second waits for it, and the room's log is reset meanwhile.
    reader.send('geo.join', { room: second, since: 0 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await deployment.region('eu').transport.deleteLog(globalLog(second));

    const refusal = await reader.next('geo.error', (data) => data.room === second, 5000);
    expect(refusal.code).toBe('UNAVAILABLE');
    // The connection's next frames run: a ping is answered, a publish acked, a rejoin answered.
    reader.send('geo.ping', { t: 1 });
    expect(await reader.next('geo.pong', () => true, 5000)).toEqual({ t: 1 });
    expect((await reader.publish('note.add', first, { text: 'after' })).seq).toBe(21);
    const rejoined = await reader.join(second);
    expect(rejoined).toMatchObject({ room: second, recovered: true });
    // The bystander was told about the reset like any live member, and its connection works too.
    expect((await bystander.next('geo.error', (data) => data.room === second)).code).toBe('UNAVAILABLE');
    expect(await bystander.join(second)).toMatchObject({ room: second });
  }, 30_000);
});
