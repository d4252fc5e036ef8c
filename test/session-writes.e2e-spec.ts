import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import type { GeoSessionState } from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

/**
 * G6's cost bound (#12): session writes grow with membership changes, never with events x
 * connections or connections x time. Real servers and sockets on the memory transport, its
 * real state store wrapped to count writes.
 */
describe('session writes follow membership changes only', () => {
  const REGIONS = ['eu', 'us'];
  const ROOMS = 6;
  const PER_REGION = 30;
  /** Longer than the old 5 s save period, so a per-period write would show. */
  const EVENTS_FOR_MS = 6000;
  /** What the keeper's debounce (50 ms, at most 1 s) needs to have written everything due. */
  const SETTLE_MS = 1300;
  let deployment: Deployment;
  const writes: { id: string; state: GeoSessionState }[] = [];
  const clients: { region: string; name: string; client: WsTestClient; sessionId: string; rooms: string[] }[] = [];
  const rooms = Array.from({ length: ROOMS }, (_, i) => `writes-${randomUUID().slice(0, 6)}-${i}`);
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const writesOf = (id: string) => writes.filter((write) => write.id === id);

  beforeAll(async () => {
    deployment = await deployRegions(REGIONS);
    const state = deployment.network.state;
    const put = state.putSession.bind(state);
    state.putSession = (id, session, ttlMs) => {
      writes.push({ id, state: structuredClone(session) });
      return put(id, session, ttlMs);
    };
  });

  afterAll(async () => {
    for (const { client } of clients) client.close();
    await deployment.close();
  });

  it('N connections receiving many events write nothing; then exactly one write per leave, per close and per drained connection', async () => {
    // Each connection joins two rooms, back to back (one burst: one write).
    for (const region of REGIONS) {
      for (let i = 0; i < PER_REGION; i++) {
        const name = `${region}-${i}`;
        const client = await WsTestClient.connect(deployment.region(region).wsUrl, { name });
        const sessionId = client.frames.find((frame) => frame.event === 'geo.welcome')!.data.session_id as string;
        const mine = [rooms[i % ROOMS], rooms[(i + 1) % ROOMS]];
        client.send('geo.join', { room: mine[0] });
        client.send('geo.join', { room: mine[1] });
        await client.next('geo.joined', (data) => data.room === mine[1]);
        clients.push({ region, name, client, sessionId, rooms: mine });
      }
    }
    await sleep(SETTLE_MS);
    const connections = clients.length;
    expect(new Set(writes.map((write) => write.id)).size).toBe(connections);
    expect(writes).toHaveLength(connections);
    writes.length = 0;

    // Events flow for longer than the old save period: every member receives them, nothing is written.
    const publishers = rooms.map((room) => clients.find((entry) => entry.rooms[0] === room)!.client);
    const started = Date.now();
    let published = 0;
    while (Date.now() - started < EVENTS_FOR_MS) {
      await Promise.all(publishers.map((publisher, r) => publisher.publish('note.add', rooms[r], { text: `n${published}` })));
      published++;
      await sleep(50);
    }
    for (const { client, rooms: mine } of clients) for (const room of mine) await client.waitForEvents(room, published);
    await sleep(SETTLE_MS);
    console.log(
      `${connections} connections, ${published * ROOMS} events over ${Date.now() - started} ms (${published * connections * 2} deliveries): ${writes.length} session writes`,
    );
    expect(writes).toHaveLength(0);

    // Ten connections leave a room: ten writes, each without that room and at the room's last seq for the other.
    const leaving = clients.slice(0, 10);
    for (const { client, rooms: mine } of leaving) {
      client.send('geo.leave', { room: mine[0] });
      await client.next('geo.left', (data) => data.room === mine[0]);
    }
    await sleep(SETTLE_MS);
    expect(writes).toHaveLength(leaving.length);
    for (const { sessionId, rooms: mine } of leaving) {
      expect(writesOf(sessionId)).toHaveLength(1);
      expect(Object.keys(writesOf(sessionId)[0].state.rooms)).toEqual([mine[1]]);
      expect(writesOf(sessionId)[0].state.rooms[mine[1]].seq).toBe(published);
    }
    writes.length = 0;

    // Fifteen close: one write each, with the real positions (where the feeds took them), not the join's.
    const closing = clients.slice(10, 25);
    for (const { client } of closing) client.close();
    await waitFor(() => writes.length === closing.length, 'a write per close');
    await sleep(SETTLE_MS);
    expect(writes).toHaveLength(closing.length);
    for (const { sessionId, rooms: mine } of closing) {
      expect(writesOf(sessionId)).toHaveLength(1);
      expect(writesOf(sessionId)[0].state.rooms).toEqual(
        Object.fromEntries(mine.map((room) => [room, { seq: published, epoch: expect.any(String) }])),
      );
    }
    writes.length = 0;

    // A drain (us shuts down): one write per connection it still had.
    const drained = clients.slice(25).filter((entry) => entry.region === 'us');
    expect(drained.length).toBeGreaterThan(0);
    await deployment.region('us').app.close();
    expect(writes).toHaveLength(drained.length);
    for (const { sessionId } of drained) expect(writesOf(sessionId)).toHaveLength(1);

    // And what was written is what a client that lost its state gets back anywhere.
    const { name, sessionId, rooms: mine } = drained[0];
    const again = await WsTestClient.connect(`${deployment.region('eu').wsUrl}?name=${name}&session=${sessionId}`);
    const welcome = again.frames.find((frame) => frame.event === 'geo.welcome')!.data;
    expect(welcome.session_id).toBe(sessionId);
    expect(welcome.restored).toEqual(Object.fromEntries(mine.map((room) => [room, { seq: published, epoch: expect.any(String) }])));
    again.close();
  }, 60_000);

  it('the session is read while the revocation list is (one wait, not two), and still only for its own sender', async () => {
    const name = `early-${randomUUID().slice(0, 6)}`;
    const first = await WsTestClient.connect(`${deployment.region('eu').wsUrl}?name=${name}`);
    const sessionId = first.frames.find((frame) => frame.event === 'geo.welcome')!.data.session_id as string;
    first.send('geo.join', { room: rooms[0] });
    await first.next('geo.joined', (data) => data.room === rooms[0]);
    await sleep(SETTLE_MS); // the session is saved
    first.close();
    const state = deployment.network.state;
    const [isRevoked, getSession] = [state.isRevoked.bind(state), state.getSession.bind(state)];
    const steps: string[] = [];
    state.isRevoked = async (tokenId) => {
      steps.push('revocation read starts');
      await sleep(300); // e.g. a primary in another region
      steps.push('revocation read answered');
      return isRevoked(tokenId);
    };
    state.getSession = (id) => {
      steps.push('session read starts');
      return getSession(id);
    };
    try {
      const resumed = await WsTestClient.connect(
        `${deployment.region('eu').wsUrl}?name=${name}&session=${sessionId}&token_id=t-${randomUUID()}`,
      );
      expect(steps).toEqual(['session read starts', 'revocation read starts', 'revocation read answered']);
      expect(resumed.frames.find((frame) => frame.event === 'geo.welcome')!.data.session_id).toBe(sessionId);
      resumed.close();
      // Another sender naming that session: read as early, never restored.
      steps.length = 0;
      const intruder = await WsTestClient.connect(
        `${deployment.region('eu').wsUrl}?name=intruder&session=${sessionId}&token_id=t-${randomUUID()}`,
      );
      const welcome = intruder.frames.find((frame) => frame.event === 'geo.welcome')!.data;
      expect(steps[0]).toBe('session read starts');
      expect(welcome.session_id).not.toBe(sessionId);
      expect(welcome.restored).toBeUndefined();
      intruder.close();
    } finally {
      state.isRevoked = isRevoked;
      state.getSession = getSession;
    }
  });

  it('a state store that does not answer delays geo.welcome by loadTimeoutMs at most (a new session), never until the client gives up', async () => {
    const state = deployment.network.state;
    const getSession = state.getSession.bind(state);
    state.getSession = () => new Promise(() => undefined); // e.g. a KV leader election
    try {
      const asked = randomUUID();
      const began = Date.now();
      const client = await WsTestClient.connect(`${deployment.region('eu').wsUrl}?name=stuck&session=${asked}`);
      const waited = Date.now() - began;
      const welcome = client.frames.find((frame) => frame.event === 'geo.welcome')!.data;
      console.log(`welcome after ${waited} ms with the state store hanging (loadTimeoutMs 2000)`);
      expect(waited).toBeGreaterThanOrEqual(1900);
      expect(waited).toBeLessThan(4000); // the SDK gives up at 10 s (NO_WELCOME)
      expect(welcome.session_id).toEqual(expect.any(String));
      expect(welcome.session_id).not.toBe(asked);
      expect(welcome.restored).toBeUndefined();
      client.close();
    } finally {
      state.getSession = getSession;
    }
  });
});
