import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { freePort } from '../apps/lab/src/topology/free-port.js';
import { dropNatsNamespace, testNamespace } from './support/nats-namespace.js';
import { dropRedisNamespace } from './support/redis-namespace.js';
import { RegionProcess } from '../apps/lab/src/topology/server-process.js';
import { demoToken } from './support/demo-token.js';
import { WsTestClient } from './support/ws-test-client.js';

const natsUrl = process.env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222';
const redisUrl = process.env.GEO_REDIS_URL ?? 'redis://127.0.0.1:6379';

const brokers: [string, Record<string, string>, (namespace: string) => Promise<void>][] = [
  ['nats', { GEO_TRANSPORT: 'nats', GEO_NATS_URL: natsUrl }, (namespace) => dropNatsNamespace(natsUrl, namespace)],
  ['redis', { GEO_TRANSPORT: 'redis', GEO_REDIS_URL: redisUrl }, (namespace) => dropRedisNamespace(redisUrl, namespace)],
];

/** `npm run start:region` three times: one process per region, as deployed. */
describe.each(brokers)('sample chat app: one process per region on %s', (broker, env, drop) => {
  const regions: RegionProcess[] = [];
  const namespace = testNamespace(`procs${broker}`);

  beforeAll(async () => {
    const names = ['asia', 'eu', 'us'];
    const ports = await Promise.all(names.map(() => freePort()));
    const directory = names.map((name, i) => `${name}=http://127.0.0.1:${ports[i]}`).join(',');
    for (const [i, name] of names.entries()) {
      regions.push(new RegionProcess(name, ports[i], { ...env, GEO_NAMESPACE: namespace, GEO_REGIONS: directory }));
    }
    await Promise.all(regions.map((region) => region.start()));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(regions.map((region) => region.stop()));
    await drop(namespace);
  });

  it('messages published in each region reach every region in one order', async () => {
    const room = `lobby-${randomUUID().slice(0, 6)}`;
    const clients = await Promise.all(
      regions.map(async (region) => WsTestClient.connect(region.wsUrl, { token: await demoToken(region.url, `${region.region}-user`) })),
    );
    for (const client of clients) await client.join(room);
    await Promise.all(
      clients.map(async (client, i) => {
        for (let n = 0; n < 10; n++)
          expect((await client.publish('chat.message', room, { text: `${regions[i].region} ${n}` })).seq).toEqual(expect.any(Number));
      }),
    );
    for (const client of clients) await client.waitForEvents(room, 30);
    const reference = clients[0].events(room);
    for (const client of clients) expect(client.events(room)).toEqual(reference);
    expect(new Set(reference.map((event) => event.region))).toEqual(new Set(['asia', 'eu', 'us']));
    for (const client of clients) client.close();
  });
});
