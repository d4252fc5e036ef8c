import { afterAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { globalLog, natsTransport } from '@geo-ws/nest';
import { checkLogs } from './support/checker.js';
import { startSupercluster, type NatsTopology } from '../apps/lab/src/topology/nats-cluster.js';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

const REGIONS = ['asia', 'eu', 'us'];

describe('room homes on a NATS supercluster (roomHomes: each room in its home cluster)', () => {
  let topology: NatsTopology | undefined;
  let deployment: Deployment | undefined;
  const clients: WsTestClient[] = [];

  afterAll(async () => {
    for (const client of clients) client.close();
    await deployment?.close();
    await topology?.stop();
  });

  it('a room lives in the stream of the region that published first, in that cluster; every region gets one order, nothing lost', async () => {
    topology = await startSupercluster(REGIONS);
    const clusters = topology;
    const namespace = `rh${randomUUID().slice(0, 6)}`;
    deployment = await deployRegions(REGIONS, {
      transport: (region) => natsTransport({ servers: clusters.node(region).clientUrl, namespace, homeCluster: 'eu', roomHomes: true }),
      geo: { limits: { rate: { perSecond: 1000, burst: 1000 } } },
    });
    const room = `team-${randomUUID().slice(0, 6)}`;
    for (const region of REGIONS) {
      for (const n of [1, 2]) {
        const client = await WsTestClient.connect(deployment.region(region).wsUrl, { name: `${region}-${n}` });
        clients.push(client);
        await client.join(room); // before the room has a home: these members must miss nothing
      }
    }
    // us publishes first: the room is homed there.
    const usPublisher = clients[4];
    await usPublisher.publishUntilAcked('note.add', room, { text: 'us-first' });
    const answers = await Promise.all(
      REGIONS.map(async (region) => (await fetch(`${deployment!.region(region).url}/geo/rooms/${room}`)).json()),
    );
    for (const answer of answers) expect(answer).toEqual({ room, home: 'us', term: 1, placement: 'per-room' });

    // The home stream is in us's cluster.
    const nc = await connect({ servers: clusters.node('eu').clientUrl });
    try {
      const info = await (await jetstreamManager(nc)).streams.info(`GEOWS_${namespace.toUpperCase()}_H_US`);
      expect(info.cluster?.name).toBe('us');
    } finally {
      await nc.close();
    }

    // Every region publishes at once, to the room homed in us.
    const acked: { eventId: string; seq: number }[] = [];
    await Promise.all(
      [clients[0], clients[2], clients[4]].map(async (publisher, p) => {
        for (let n = 0; n < 15; n++) acked.push(await publisher.publishUntilAcked('note.add', room, { text: `${REGIONS[p]}-${n}` }));
      }),
    );
    const total = acked.length + 1;
    for (const client of clients) await client.waitForEvents(room, total, 20_000);
    const log = (await deployment.region('asia').transport.read(globalLog(room), 0, 1000)).events;
    const report = checkLogs(
      log,
      clients.map((client) => client.events(room)),
    );
    expect(report).toEqual({ clients: 6, events: total, lost: 0, duplicated: 0, reordered: 0, divergent: 0 });
    expect(new Set(log.map((event) => event.region))).toEqual(new Set(REGIONS));
  }, 120_000);
});
