import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { globalLog, natsTransport, type GeoLoggedEnvelope, type GeoTransport, type GeoTransportFactory } from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';
import { LinkProxy } from '../apps/lab/src/topology/link-proxy.js';
import { startSupercluster, type NatsTopology } from '../apps/lab/src/topology/nats-cluster.js';
import { dropNatsNamespace, testNamespace } from './support/nats-namespace.js';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

const REGIONS = ['eu', 'us'];
/** Events age out of the stream after 1.5 s (the module's options allow no less than 2 min: the test sets the transport's own). */
const MAX_AGE_MS = 1500;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Issue 20, point 2 (G3): once retention removed every event of a room, a client resuming
 * from a position before them must be answered `recovered: false`, whether the join is
 * answered from the feed's head (no read) or by a read, and whichever region appends the
 * room's next event. A supercluster started by the test: one cluster per region, the
 * global stream homed in eu; us appends through the gateway.
 */
describe('NATS supercluster: resumes past events that aged out are told recovered: false', () => {
  let topology: NatsTopology;
  let deployment: Deployment;

  beforeAll(async () => {
    topology = await startSupercluster(REGIONS);
    const clusters = topology;
    const transport =
      (region: string): GeoTransportFactory =>
      (context) =>
        natsTransport({ servers: clusters.node(region).clientUrl, namespace: 'aged', homeCluster: 'eu' })({
          ...context,
          dedupWindowMs: 500,
          retention: { maxEvents: 10_000, maxAgeMs: MAX_AGE_MS },
        });
    deployment = await deployRegions(REGIONS, { transport, geo: { limits: { rate: { perSecond: 1000, burst: 1000 } } } });
  }, 90_000);

  afterAll(async () => {
    await deployment?.close();
    await topology?.stop();
  });

  it('from the feed of a room emptied by age, then after another region appended first; a member that joined at the head and a live bystander lose nothing and are told so', async () => {
    const eu = deployment.region('eu').wsUrl;
    const us = deployment.region('us').wsUrl;
    const room = 'aged-room';
    const other = 'bystander-room';
    // The bystander stays in another room throughout, its events flowing from us.
    const carol = await WsTestClient.connect(eu, { name: 'carol' });
    const dave = await WsTestClient.connect(us, { name: 'dave' });
    const carolJoined = await carol.join(other);
    await dave.join(other);
    await dave.publishUntilAcked('note.add', other, { text: 'before' });

    // alice writes three events, then everybody leaves the room (its feed in eu closes).
    const alice = await WsTestClient.connect(eu, { name: 'alice' });
    const joined = await alice.join(room);
    const written: number[] = [];
    for (const text of ['one', 'two', 'three']) written.push((await alice.publishUntilAcked('note.add', room, { text })).seq);
    await alice.waitForEvents(room, 3);
    alice.close();
    await sleep(MAX_AGE_MS + 1500);

    // 1. No event of the room is left: the eu feed opens on an empty log. A resume from
    //    before the last event is answered from the feed's head: it must say events are gone.
    const bob = await WsTestClient.connect(eu, { name: 'bob' });
    const bobJoined = await bob.join(room, { since: written[0], epoch: joined.epoch });
    expect(bobJoined).toMatchObject({ room, epoch: joined.epoch, recovered: false });
    expect(bobJoined.seq).toBeGreaterThanOrEqual(written[2]);
    // A fresh joiner gets the head position; it is the one the room's next event follows.
    const erin = await WsTestClient.connect(eu, { name: 'erin' });
    const erinJoined = await erin.join(room);
    expect(erinJoined).toMatchObject({ room, epoch: joined.epoch, recovered: true });
    expect(erinJoined.seq).toBeGreaterThanOrEqual(written[2]);
    bob.close();
    erin.close();

    // 2. Another region appends the room's next event first (it never saw the room's events).
    const frank = await WsTestClient.connect(us, { name: 'frank' });
    await frank.join(room);
    const next = await frank.publishUntilAcked('note.add', room, { text: 'from us' });
    await frank.waitForEvents(room, 1);
    // eu opens the room's feed again (a read answers): alice's old position lost events…
    const grace = await WsTestClient.connect(eu, { name: 'grace' });
    expect(await grace.join(room, { since: written[1], epoch: joined.epoch })).toMatchObject({ room, recovered: false });
    expect((await grace.waitForEvents(room, 1)).map((event) => event.seq)).toEqual([next.seq]);
    // …so in us, where the feed is open;
    const heidi = await WsTestClient.connect(us, { name: 'heidi' });
    expect(await heidi.join(room, { since: written[0], epoch: joined.epoch })).toMatchObject({ room, recovered: false });
    expect((await heidi.waitForEvents(room, 1)).map((event) => event.seq)).toEqual([next.seq]);
    // …but erin, who joined at the head, missed nothing, in either region.
    for (const url of [eu, us]) {
      const back = await WsTestClient.connect(url, { name: 'erin' });
      expect(await back.join(room, { since: erinJoined.seq, epoch: erinJoined.epoch })).toMatchObject({ room, recovered: true });
      expect((await back.waitForEvents(room, 1)).map((event) => event.seq)).toEqual([next.seq]);
      back.close();
    }

    // The bystander received its room's events in order, was never told to rejoin, and its
    // up-to-date position resumes complete (its feed stayed open).
    await dave.publishUntilAcked('note.add', other, { text: 'after' });
    const seen = await carol.waitForEvents(other, 2);
    expect(carol.errors()).toEqual([]);
    const carolBack = await WsTestClient.connect(eu, { name: 'carol' });
    expect(await carolBack.join(other, { since: seen[1].seq as number, epoch: carolJoined.epoch })).toMatchObject({ recovered: true });
    for (const client of [carol, carolBack, dave, frank, grace, heidi]) client.close();
  }, 60_000);
});

/**
 * A live tail whose consumer is created again (a reconnect, a lost consumer) reads on from
 * the next undelivered stream sequence; a JetStream consumer skips whatever retention
 * removed meanwhile without a word. The reader reaches the shared NATS through a link
 * the test cuts; the writer is connected directly.
 */
describe('NATS tails that restart after retention removed what they had not delivered', () => {
  const servers = process.env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222';
  let link: LinkProxy;

  beforeAll(async () => {
    const [host, port] = servers.replace('nats://', '').split(':');
    link = await new LinkProxy({ host, port: Number(port) }).start();
  });

  afterAll(async () => {
    await link?.stop();
  });

  const draft = (room: string) => ({
    event_id: randomUUID(),
    room_id: room,
    type: 'note.add',
    sender: 'writer',
    timestamp: new Date().toISOString(),
    region: 'eu',
    data: null,
  });

  for (const [mode, sharedTailFrom] of [
    ['a consumer per room', Number.POSITIVE_INFINITY],
    ['one consumer per stream', 1],
  ] as const) {
    it(`${mode}: the tail of a room trimmed past its position fails instead of skipping; a room that lost nothing reads on`, async () => {
      const namespace = testNamespace('renew');
      const context = { region: 'eu', regions: ['eu'], dedupWindowMs: 120_000, retention: { maxEvents: 2, maxAgeMs: 3_600_000 } };
      const writer = await natsTransport({ servers, namespace })(context);
      const reader = await natsTransport({ servers: link.url, namespace, sharedTailFrom, requestTimeoutMs: 1000 })(context);
      const opened: GeoTransport[] = [writer, reader];
      try {
        await writer.connect();
        await reader.connect();
        const [trimmed, bystander] = [globalLog('trimmed'), globalLog('bystander')];
        const seen = new Map<string, GeoLoggedEnvelope[]>([
          [trimmed.room, []],
          [bystander.room, []],
        ]);
        const errors = new Map<string, Error[]>([
          [trimmed.room, []],
          [bystander.room, []],
        ]);
        for (const log of [trimmed, bystander]) {
          await reader.tail(
            log,
            0,
            (event) => seen.get(log.room)!.push(event),
            (error) => errors.get(log.room)!.push(error),
          );
          await writer.append(log, draft(log.room));
        }
        await waitFor(() => [...seen.values()].every((events) => events.length === 1), 'the first event of each room');

        link.cut();
        await waitFor(() => !reader.isReady(), 'the reader to lose NATS');
        // Five events in one room (maxEvents 2: three are trimmed before the reader is back), one in the other.
        const written: number[] = [];
        for (let i = 0; i < 5; i++) written.push((await writer.append(trimmed, draft(trimmed.room))).seq);
        const quiet = await writer.append(bystander, draft(bystander.room));
        link.restore();
        await waitFor(() => reader.isReady(), 'the reader to reconnect', 10_000);

        await waitFor(() => errors.get(trimmed.room)!.length === 1, "the trimmed room's tail to fail", 10_000);
        await new Promise((resolve) => setTimeout(resolve, 500));
        expect(seen.get(trimmed.room)!.map((event) => event.seq)).toEqual([1]);
        if (sharedTailFrom === 1) {
          // One consumer for both rooms: it cannot tell which room lost events, so both tails fail.
          expect(errors.get(bystander.room)).toHaveLength(1);
        } else {
          expect(errors.get(bystander.room)).toEqual([]);
          await waitFor(() => seen.get(bystander.room)!.length === 2, "the bystander's event from the outage");
          expect(seen.get(bystander.room)!.map((event) => event.seq)).toEqual([2, quiet.seq]);
        }
        expect(written).toHaveLength(5);
      } finally {
        await Promise.all(opened.map((transport) => transport.close()));
        await dropNatsNamespace(servers, namespace);
      }
    }, 30_000);
  }
});
