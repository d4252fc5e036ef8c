import { afterAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { globalLog, natsTransport, type GeoAppendResult, type GeoTransport } from '@geo-ws/nest';
import { LinkProxy } from '../apps/lab/src/topology/link-proxy.js';
import { startSupercluster, type NatsTopology } from '../apps/lab/src/topology/nats-cluster.js';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

const REGIONS = ['asia', 'eu', 'us'];

/** The `text`s of the events of `room` a client got that contain `part`, in arrival order. */
function textsWith(client: WsTestClient, room: string, part: string): string[] {
  return client
    .events(room)
    .map((event) => (event.data as { text: string }).text)
    .filter((text) => text.includes(part));
}

/**
 * Joins again after the server dropped the client from `room` (a `geo.error` naming it),
 * from where it was: resolves with the join's answer.
 */
async function rejoinAfterEviction(client: WsTestClient, room: string, since: number, epoch: string) {
  await client.next('geo.error', (data) => data.room === room && !data.event_id, 30_000);
  for (let attempt = 0; ; attempt++) {
    const joined = await client.join(room, { since, epoch }).catch(() => undefined);
    if (joined) return joined;
    if (attempt > 50) throw new Error(`${room}: no join after the eviction`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe("takeover: a room whose home region's brokers are lost moves to a surviving region (NATS supercluster)", () => {
  let topology: NatsTopology | undefined;
  let deployment: Deployment | undefined;
  const clients: WsTestClient[] = [];

  const transports: (GeoTransport & { connect(): Promise<void> })[] = [];
  const proxies: { from: string; to: string; proxy: LinkProxy }[] = [];

  afterAll(async () => {
    for (const client of clients) client.close();
    await deployment?.close();
    await Promise.allSettled(transports.map((transport) => transport.close()));
    await topology?.stop();
    await Promise.allSettled(proxies.map(({ proxy }) => proxy.stop()));
  });

  it("us's cluster SIGKILLed mid-stream: the room homed there is writable again from asia and eu, in a new epoch every member is told of; a room homed in eu never stops; us, back, follows", async () => {
    topology = await startSupercluster(REGIONS);
    const clusters = topology;
    const namespace = `to${randomUUID().slice(0, 6)}`;
    deployment = await deployRegions(REGIONS, {
      transport: (region) =>
        natsTransport({ servers: clusters.node(region).clientUrl, namespace, homeCluster: 'eu', roomHomes: true, takeoverAfterMs: 2000 }),
      geo: { limits: { rate: { perSecond: 1000, burst: 1000 } } },
    });
    const connect = async (region: string, name: string) => {
      const client = await WsTestClient.connect(deployment!.region(region).wsUrl, { name });
      clients.push(client);
      return client;
    };
    const room = `lost-${randomUUID().slice(0, 6)}`;
    const bystanderRoom = `calm-${randomUUID().slice(0, 6)}`;
    const asia = await connect('asia', 'asia');
    const eu = await connect('eu', 'eu');
    const us = await connect('us', 'us');
    const bystander = await connect('asia', 'bystander');
    const before = await Promise.all([asia, eu].map((client) => client.join(room)));
    await us.join(room);
    await eu.join(bystanderRoom);
    await bystander.join(bystanderRoom);
    // us publishes first: the room lives in us's cluster. The bystander room lives in eu's.
    await us.publishUntilAcked('note.add', room, { text: 'us-0' });
    await eu.publishUntilAcked('note.add', bystanderRoom, { text: 'calm-0' });
    for (let n = 1; n <= 3; n++) {
      for (const [name, client] of [
        ['asia', asia],
        ['eu', eu],
        ['us', us],
      ] as const)
        await client.publishUntilAcked('note.add', room, { text: `${name}-${n}` });
    }
    const oldEpoch = before[0].epoch;
    for (const member of [asia, eu]) await member.waitForEvents(room, 10, 20_000);
    const lastOld = asia.events(room).at(-1)!.seq!;
    expect(eu.events(room).map((event) => event.seq)).toEqual(asia.events(room).map((event) => event.seq));

    await clusters.kill('us');
    const killedAt = Date.now();
    // Each member is dropped from the room once it is taken over and, joining again from
    // where it was, is told the room goes on in a new epoch: recovered false, never a
    // silent gap. Publishers in asia and eu go on meanwhile: refused (UNAVAILABLE) until
    // the takeover, refused as not joined between their drop and their join, then acked.
    const rejoins = [asia, eu].map((client) => rejoinAfterEviction(client, room, lastOld, oldEpoch));
    const publishThrough = async (client: WsTestClient, text: string, rejoined: Promise<unknown>) => {
      for (;;) {
        try {
          return await client.publishUntilAcked('note.add', room, { text });
        } catch (error) {
          if (!(error as Error).message.includes('NOT_JOINED')) throw error;
          await rejoined;
        }
      }
    };
    const [asiaAck, euAck] = await Promise.all([
      publishThrough(asia, 'asia-after', rejoins[0]),
      publishThrough(eu, 'eu-after', rejoins[1]),
    ]);
    const writableAfterMs = Date.now() - killedAt;
    expect(writableAfterMs).toBeLessThan(20_000);
    // Meanwhile the room homed in eu went on as ever.
    await eu.publishUntilAcked('note.add', bystanderRoom, { text: 'calm-1' });
    await bystander.next('note.add', (data) => data.data?.text === 'calm-1', 10_000);
    expect(bystander.events(bystanderRoom).map((event) => (event.data as { text: string }).text)).toEqual(['calm-0', 'calm-1']);

    const rejoined = await Promise.all(rejoins);
    for (const joined of rejoined)
      expect({ recovered: joined.recovered, newEpoch: joined.epoch !== oldEpoch }).toEqual({ recovered: false, newEpoch: true });
    expect(rejoined[0].epoch).toBe(rejoined[1].epoch);
    const home = (await (await fetch(`${deployment.region('eu').url}/geo/rooms/${room}`)).json()) as { home: string; term: number };
    expect(['asia', 'eu']).toContain(home.home);
    expect(home.term).toBe(2);

    // The new epoch: one order at every member, from both surviving regions.
    for (let n = 0; n < 3; n++) {
      await asia.publishUntilAcked('note.add', room, { text: `asia-new-${n}` });
      await eu.publishUntilAcked('note.add', room, { text: `eu-new-${n}` });
    }
    const expected = ['asia-new-0', 'eu-new-0', 'asia-new-1', 'eu-new-1', 'asia-new-2', 'eu-new-2'];
    for (const member of [asia, eu]) {
      await member.next('note.add', (data) => data.data?.text === 'eu-new-2', 20_000);
      expect(textsWith(member, room, '-new-')).toEqual(expected);
    }
    // The new epoch at both members: the two publishes that waited for the takeover (each
    // once), then the rest, at the same positions (stream sequences of the new home, rising).
    const newEpochEvents = (client: WsTestClient) =>
      client
        .events(room)
        .filter((event) => /-(after|new-)/.test((event.data as { text: string }).text))
        .map((event) => [event.seq, (event.data as { text: string }).text]);
    expect(newEpochEvents(asia)).toEqual(newEpochEvents(eu));
    const positions = newEpochEvents(asia).map(([seq]) => seq as number);
    expect(positions).toHaveLength(8);
    expect(positions.every((seq, i) => i === 0 || seq > positions[i - 1])).toBe(true);
    expect(
      newEpochEvents(asia)
        .slice(0, 2)
        .map(([, text]) => text)
        .sort(),
    ).toEqual(['asia-after', 'eu-after']);
    expect([asiaAck.seq, euAck.seq].sort((a, b) => a - b)).toEqual(positions.slice(0, 2));
    console.log(`takeover: writable again ${writableAfterMs} ms after us's cluster was killed (takeoverAfterMs 2000)`);

    // us comes back: it reads the new record like everyone, drops its member from the old
    // epoch, and its appends go to the room's new home, in the one order.
    await clusters.restart('us');
    const usJoined = await rejoinAfterEviction(us, room, lastOld, oldEpoch);
    expect({ recovered: usJoined.recovered, epoch: usJoined.epoch }).toEqual({ recovered: false, epoch: rejoined[0].epoch });
    await us.publishUntilAcked('note.add', room, { text: 'us-new-0' });
    for (const member of [asia, eu, us]) await member.next('note.add', (data) => data.data?.text === 'us-new-0', 20_000);
    expect(newEpochEvents(us)).toEqual(newEpochEvents(asia));
    expect(newEpochEvents(asia).at(-1)?.[1]).toBe('us-new-0');
    expect(((await (await fetch(`${deployment.region('us').url}/geo/rooms/${room}`)).json()) as { home: string }).home).toBe(home.home);
  }, 180_000);

  it('a partition that isolates the home: it stops acking within a lease, asia and eu take the room over, and it follows once healed', async () => {
    Logger.overrideLogger(['warn', 'error']);
    await topology?.stop();
    topology = await startSupercluster(REGIONS, {
      link: async (from, to, host, port) => {
        const proxy = await new LinkProxy({ host, port }, 5).start();
        proxies.push({ from, to, proxy });
        return { host: proxy.host, port: proxy.port };
      },
    });
    const clusters = topology;
    const namespace = `tp${randomUUID().slice(0, 6)}`;
    for (const region of REGIONS) {
      const transport = natsTransport({
        servers: clusters.node(region).clientUrl,
        namespace,
        homeCluster: 'eu',
        roomHomes: true,
        takeoverAfterMs: 2000,
        requestTimeoutMs: 1500,
      })({ region, regions: REGIONS, dedupWindowMs: 120_000, retention: { maxEvents: 10_000, maxAgeMs: 3_600_000 } }) as GeoTransport & {
        connect(): Promise<void>;
      };
      await transport.connect();
      transports.push(transport);
    }
    const [asiaT, euT, usT] = transports.slice(-3);
    const room = globalLog(`split-${randomUUID().slice(0, 6)}`);
    let n = 0;
    const append = (transport: GeoTransport, region: string) =>
      transport.append(room, {
        event_id: `${region}-${n++}`,
        room_id: room.room,
        type: 't.e',
        sender: region,
        timestamp: new Date().toISOString(),
        region,
        data: { region },
      });
    const first = await append(usT, 'us'); // homed in us
    await append(asiaT, 'asia');
    const oldEpoch = first.epoch;

    // us cut off from asia and eu (and so from the homes bucket, in eu).
    for (const { from, to, proxy } of proxies) if (from === 'us' || to === 'us') proxy.cut();
    const cutAt = Date.now();
    const acked: { region: string; at: number; result: GeoAppendResult }[] = [];
    const keepAppending = async (transport: GeoTransport, region: string, ms: number) => {
      for (const until = Date.now() + ms; Date.now() < until;) {
        const result = await append(transport, region).catch(() => undefined);
        if (result) acked.push({ region, at: Date.now() - cutAt, result });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    await Promise.all([keepAppending(usT, 'us', 8000), keepAppending(euT, 'eu', 8000)]);

    // No split brain: us acked nothing after its freshness lapsed (a lease, 1 s, after its
    // last check of the bucket), and nothing in the epoch the others took the room over in.
    const fromUs = acked.filter((entry) => entry.region === 'us');
    const fromEu = acked.filter((entry) => entry.region === 'eu');
    console.log(
      `partition: us acked ${fromUs.length} (last at ${fromUs.at(-1)?.at ?? '-'} ms), eu acked ${fromEu.length} (first at ${fromEu[0]?.at ?? '-'} ms)`,
    );
    for (const entry of fromUs) expect({ at: entry.at < 1500, epoch: entry.result.epoch }).toEqual({ at: true, epoch: oldEpoch });
    expect(fromEu.length).toBeGreaterThan(0);
    // Never both at once: eu's first ack in the new epoch comes after us's last one (the
    // taker waits a lease after recording the takeover).
    const firstNew = fromEu.find((entry) => entry.result.epoch !== oldEpoch)!;
    expect(fromUs.every((entry) => entry.at < firstNew.at)).toBe(true);
    const newEpoch = fromEu.at(-1)!.result.epoch;
    expect(newEpoch).not.toBe(oldEpoch);
    expect(((await euT.home(room.room)) as { region: string }).region).not.toBe('us');

    // Healed: us reads the new record and appends where the room lives now, in its epoch.
    for (const { proxy } of proxies) proxy.heal();
    let afterHeal: GeoAppendResult | undefined;
    for (const until = Date.now() + 30_000; !afterHeal && Date.now() < until;) {
      afterHeal = await append(usT, 'us').catch(() => undefined);
      if (!afterHeal) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(afterHeal?.epoch).toBe(newEpoch);
    // The new epoch's log, read in eu: eu's acked appends, then us's, each once, in ack order.
    // (Asked again while JetStream settles after the heal.)
    let read: Awaited<ReturnType<GeoTransport['read']>> | undefined;
    for (const until = Date.now() + 20_000; !read && Date.now() < until;) {
      read = await euT.read(room, 0, 1000).catch(() => undefined);
      if (!read) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    if (!read) throw new Error('eu could not read the room after the heal');
    expect(read.epoch).toBe(newEpoch);
    const expected = [...fromEu.map((entry) => entry.result.seq), afterHeal!.seq];
    expect(read.events.map((event) => event.seq)).toEqual(expected);
  }, 120_000);
});
