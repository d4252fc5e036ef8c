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

  it('refuses a malformed room id with 400', async () => {
    deployment = await deployRegions(['eu']);
    expect((await homeOf(deployment, 'eu', 'a b')).status).toBe(400);
  });
});
