import { afterEach, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

const room = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

/** `GET /geo/rooms/:room` of one region, as JSON with its status. */
async function homeOf(deployment: Deployment, region: string, name: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${deployment.region(region).url}/geo/rooms/${encodeURIComponent(name)}`);
  return { status: response.status, body: await response.json() };
}

describe('room homes over the memory transport (GET /geo/rooms/:room, placement)', () => {
  let deployment: Deployment | undefined;
  const clients: WsTestClient[] = [];

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await deployment?.close();
    deployment = undefined;
  });

  const connect = async (region: string, name: string) => {
    const client = await WsTestClient.connect(deployment!.region(region).wsUrl, { name });
    clients.push(client);
    return client;
  };

  it('a room has no home until its first event; then every region names the publisher region, term 1', async () => {
    deployment = await deployRegions(['asia', 'eu', 'us'], { delayMs: 10 });
    const name = room('homes');
    const bystander = await connect('asia', 'bystander');
    await bystander.join(name);
    for (const region of ['asia', 'eu', 'us']) {
      expect(await homeOf(deployment, region, name)).toEqual({
        status: 200,
        body: { room: name, home: null, term: 0, placement: 'per-room' },
      });
    }
    const publisher = await connect('eu', 'publisher');
    await publisher.join(name);
    await publisher.publish('note.add', name, { text: 'first' });
    await publisher.publish('note.add', name, { text: 'second' });
    for (const region of ['asia', 'eu', 'us']) {
      expect((await homeOf(deployment, region, name)).body).toMatchObject({ home: 'eu', term: 1 });
    }
    // The bystander joined before the room had a home, and gets both events in order.
    expect((await bystander.waitForEvents(name, 2)).map((event) => [event.seq, event.data])).toEqual([
      [1, { text: 'first' }],
      [2, { text: 'second' }],
    ]);
  });

  it('a room its placement names a region for is placed by its first join, before any event', async () => {
    deployment = await deployRegions(['asia', 'eu', 'us'], { geo: { placement: (name) => (name.startsWith('us-') ? 'us' : undefined) } });
    const named = room('us-joined');
    const open = room('open');
    const member = await connect('asia', 'member');
    await member.join(named);
    await member.join(open);
    const deadline = Date.now() + 5000;
    while ((await homeOf(deployment, 'eu', named)).body.home === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const region of ['asia', 'eu', 'us'])
      expect((await homeOf(deployment, region, named)).body).toMatchObject({ home: 'us', term: 1 });
    // placement leaves this one to its first event: a join does not place it.
    expect((await homeOf(deployment, 'asia', open)).body).toMatchObject({ home: null, term: 0 });
    await member.publish('note.add', named, { text: 'first' });
    expect((await member.waitForEvents(named, 1)).map((event) => [event.seq, event.data])).toEqual([[1, { text: 'first' }]]);
  });

  it('placement chooses the home; a placement answer that names no region fails the publish, not the server', async () => {
    deployment = await deployRegions(['asia', 'eu', 'us'], {
      geo: { placement: (name) => (name.startsWith('us-') ? 'us' : name.startsWith('bad-') ? 'mars' : undefined) },
    });
    const placed = room('us-placed');
    const publisher = await connect('asia', 'publisher');
    await publisher.join(placed);
    await publisher.publish('note.add', placed, { text: 'hello' });
    expect((await homeOf(deployment, 'eu', placed)).body).toMatchObject({ home: 'us', term: 1 });

    const bad = room('bad-placed');
    await publisher.join(bad);
    expect(await publisher.publish('note.add', bad, { text: 'lost?' })).toMatchObject({ code: 'INTERNAL' });
    expect((await homeOf(deployment, 'asia', bad)).body).toMatchObject({ home: null, term: 0 });
    // The connection and the server go on.
    await publisher.publish('note.add', placed, { text: 'still here' });
  });

  it("placement 'auto': a room whose publishers move to another region follows them; members see one log, no gap, no recovered: false", async () => {
    deployment = await deployRegions(['asia', 'eu', 'us'], {
      delayMs: 20,
      geo: { placement: () => 'auto', homeMoves: { windowMs: 1000 }, metrics: true, limits: { rate: { perSecond: 1000, burst: 1000 } } },
    });
    const name = room('follows');
    const members = await Promise.all(['asia', 'eu', 'us'].map((region) => connect(region, `${region}-member`)));
    for (const member of members) await member.join(name);
    const [asia, , us] = members;
    // Morning in asia: the room is homed there.
    for (let n = 0; n < 12; n++) await asia.publishUntilAcked('note.add', name, { text: `asia-${n}` });
    expect((await homeOf(deployment, 'us', name)).body).toMatchObject({ home: 'asia', term: 1 });
    // Then us takes over: after a window of mostly-us events, us moves the room to itself.
    let n = 0;
    const deadline = Date.now() + 15_000;
    while ((await homeOf(deployment, 'eu', name)).body.home !== 'us') {
      if (Date.now() > deadline) throw new Error('the room did not follow its traffic to us');
      await us.publishUntilAcked('note.add', name, { text: `us-${n++}` });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (let k = 0; k < 5; k++) await us.publishUntilAcked('note.add', name, { text: `us-${n++}` });
    const total = 12 + n;
    expect((await homeOf(deployment, 'asia', name)).body).toMatchObject({ home: 'us', term: 2 });
    for (const member of members) {
      const events = await member.waitForEvents(name, total);
      expect(events.map((event) => event.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(member.frames.filter((frame) => frame.event === 'geo.joined' && frame.data.recovered === false)).toEqual([]);
    }
    const metrics = await (await fetch(`${deployment.region('us').url}/metrics`)).text();
    expect(metrics).toMatch(/geows_room_moves_total\{region="us",from="asia"\} 1/);
    // asia's events never came from us: it moved nothing.
    expect(await (await fetch(`${deployment.region('asia').url}/metrics`)).text()).not.toMatch(/geows_room_moves_total\{region="asia"/);
  });

  it('refuses a malformed room id with 400', async () => {
    deployment = await deployRegions(['eu']);
    expect((await homeOf(deployment, 'eu', 'a b')).status).toBe(400);
  });
});
