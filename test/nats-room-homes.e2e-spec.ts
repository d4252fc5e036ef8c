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

/** Every client got the room's `total` events, as the log holds them: none lost, repeated or reordered. Returns the log. */
async function expectOneLog(deployment: Deployment, room: string, clients: WsTestClient[], total: number) {
  for (const client of clients) await client.waitForEvents(room, total, 20_000);
  const log = (await deployment.region('eu').transport.read(globalLog(room), 0, 1000)).events;
  const report = checkLogs(
    log,
    clients.map((client) => client.events(room)),
  );
  expect(report).toEqual({ clients: clients.length, events: total, lost: 0, duplicated: 0, reordered: 0, divergent: 0 });
  return log;
}

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
    // Each region made its copies of the others' room logs at boot (awaited a few seconds, then in the background).
    const mirrors = await connect({ servers: clusters.node('eu').clientUrl });
    try {
      const jsm = await jetstreamManager(mirrors);
      for (const at of ['asia', 'eu']) {
        const name = `GEOWS_${namespace.toUpperCase()}_M_US_${at.toUpperCase()}`;
        for (
          const until = Date.now() + 30_000;
          !(await jsm.streams.info(name).then(
            () => true,
            () => false,
          ));
        ) {
          if (Date.now() > until) throw new Error(`no mirror ${name} after 30 s`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    } finally {
      await mirrors.close();
    }
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

    // The home stream is in us's cluster; asia and eu read its live events from their own
    // copies of it, in their own clusters (mirrors: on, as streams are placed by cluster).
    const nc = await connect({ servers: clusters.node('eu').clientUrl });
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info(`GEOWS_${namespace.toUpperCase()}_H_US`);
      expect(info.cluster?.name).toBe('us');
      for (const region of ['asia', 'eu']) {
        const mirror = await jsm.streams.info(`GEOWS_${namespace.toUpperCase()}_M_US_${region.toUpperCase()}`);
        expect({ cluster: mirror.cluster?.name, tails: mirror.state.consumer_count > 0 }).toEqual({ cluster: region, tails: true });
      }
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
    const log = await expectOneLog(deployment, room, clients, acked.length + 1);
    expect(new Set(log.map((event) => event.region))).toEqual(new Set(REGIONS));
  }, 120_000);

  it("placement 'auto': the room moves to us's cluster when us publishes most of it, while every region keeps publishing; one order, nothing lost", async () => {
    topology ??= await startSupercluster(REGIONS);
    const clusters = topology;
    const namespace = `mv${randomUUID().slice(0, 6)}`;
    const moving = await deployRegions(REGIONS, {
      transport: (region) => natsTransport({ servers: clusters.node(region).clientUrl, namespace, homeCluster: 'eu', roomHomes: true }),
      geo: { placement: () => 'auto', homeMoves: { windowMs: 2000 }, metrics: true, limits: { rate: { perSecond: 1000, burst: 1000 } } },
    });
    try {
      const room = `sun-${randomUUID().slice(0, 6)}`;
      const members: WsTestClient[] = [];
      for (const region of REGIONS) {
        const client = await WsTestClient.connect(moving.region(region).wsUrl, { name: `${region}-member` });
        clients.push(client);
        members.push(client);
        await client.join(room);
      }
      const [asia, eu, us] = members;
      for (let n = 0; n < 10; n++) await asia.publishUntilAcked('note.add', room, { text: `asia-${n}` });
      const homeIn = async (region: string) =>
        (await (await fetch(`${moving.region(region).url}/geo/rooms/${room}`)).json()) as { home: string; term: number };
      expect(await homeIn('eu')).toMatchObject({ home: 'asia', term: 1 });
      // us publishes most from now on; asia and eu go on a little, so appends from every region cross the move.
      let sent = 10;
      const deadline = Date.now() + 30_000;
      for (let n = 0; (await homeIn('asia')).home !== 'us' || n < 40; n++) {
        if (Date.now() > deadline) throw new Error('the room did not follow its traffic to us');
        const publisher = n % 5 === 3 ? asia : n % 5 === 4 ? eu : us;
        await publisher.publishUntilAcked('note.add', room, { text: `late-${n}` });
        sent++;
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
      for (const region of REGIONS) expect(await homeIn(region)).toMatchObject({ home: 'us', term: 2 });
      await expectOneLog(moving, room, members, sent);
      for (const member of members) {
        expect(member.frames.filter((frame) => frame.event === 'geo.joined' && frame.data.recovered === false)).toEqual([]);
      }
      // Counted by us once its move returned (it may return after the record reached the other regions).
      const counted = /geows_room_moves_total\{region="us",from="asia"\} 1/;
      for (const until = Date.now() + 10_000; !counted.test(await (await fetch(`${moving.region('us').url}/metrics`)).text());) {
        if (Date.now() > until) throw new Error('us never counted the move in geows_room_moves_total');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      // The new segment lives in us's cluster.
      const nc = await connect({ servers: clusters.node('eu').clientUrl });
      try {
        const info = await (await jetstreamManager(nc)).streams.info(`GEOWS_${namespace.toUpperCase()}_H_US`);
        expect(info.cluster?.name).toBe('us');
      } finally {
        await nc.close();
      }
    } finally {
      await moving.close();
    }
  }, 120_000);
});
