import { afterEach, describe, expect, it } from '@jest/globals';
import { GeoClient, type EventDelivery, type GeoClientOptions } from '../geo-client.js';
import type { PositionStorage } from '../geo-client-options.js';
import { parseSaved, STORAGE_WRITE_MS } from './position-store.js';
import type { GeoEnvelope, GeoRegion } from '../protocol.js';
import { FakeRegion, TEST_CLIENT_OPTIONS, until, within } from '../testing/index.js';

/**
 * What the client does so that a restore shows nothing twice that it can avoid: events it
 * already has are dropped, history is flagged `replayed`, and with `storage` a reloaded
 * page resumes from its own positions (docs/CLIENT.md, "Sessions").
 */

/** A `sessionStorage` stand-in that counts writes. */
class MemoryStorage implements PositionStorage {
  readonly items = new Map<string, string>();
  writes = 0;
  failing = false;
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    if (this.failing) throw new Error('QuotaExceededError');
    this.writes++;
    this.items.set(key, value);
  }
  saved(key = 'geo-ws') {
    return parseSaved(this.getItem(key));
  }
}

describe('GeoClient positions: replayed flag and storage', () => {
  const fakes: FakeRegion[] = [];
  const clients: GeoClient[] = [];

  const region = async (): Promise<FakeRegion> => {
    const fake = await FakeRegion.start({ name: 'eu' });
    fakes.push(fake);
    return fake;
  };

  const connect = async (regions: GeoRegion[], options: Partial<GeoClientOptions> = {}): Promise<GeoClient> => {
    const client = await within(
      GeoClient.connect({
        regions,
        ...TEST_CLIENT_OPTIONS,
        ...options,
      }),
      3000,
      'connect()',
    );
    clients.push(client);
    return client;
  };

  const collect = async (client: GeoClient, room: string, position?: { since?: number; epoch?: string }) => {
    const received: { seq: number | null; replayed: boolean }[] = [];
    const joined = await within(
      client.join(
        room,
        (event: GeoEnvelope, delivery: EventDelivery) => received.push({ seq: event.seq, replayed: delivery.replayed }),
        position,
      ),
      2000,
      `join ${room}`,
    );
    return { joined, received };
  };

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await Promise.all(fakes.splice(0).map((fake) => fake.close()));
  });

  it('events up to the geo.joined seq are flagged replayed (history), later ones live; after a reconnect the missed ones too', async () => {
    const eu = await region();
    for (let i = 0; i < 3; i++) eu.emit('lobby');
    const client = await connect(eu.regions);
    const lobby = await collect(client, 'lobby', { since: 1, epoch: 'e1' });
    eu.emit('lobby');
    await until(() => lobby.received.length === 3, 'history and one live event');
    expect(lobby.received).toEqual([
      { seq: 2, replayed: true },
      { seq: 3, replayed: true },
      { seq: 4, replayed: false },
    ]);
    await eu.away(client);
    eu.emit('lobby'); // missed while away: read from history at the rejoin
    eu.resume();
    await until(() => lobby.received.length === 4, 'the missed event');
    eu.emit('lobby');
    await until(() => lobby.received.length === 5, 'a live event after the rejoin');
    expect(lobby.received.slice(3)).toEqual([
      { seq: 5, replayed: true },
      { seq: 6, replayed: false },
    ]);
  });

  it('storage: a reloaded page resumes each room from its own saved position, with its session, and sees nothing twice', async () => {
    const eu = await region();
    eu.welcome = () => ({ session_id: 's-1' });
    const storage = new MemoryStorage();
    const first = await connect(eu.regions, { storage });
    const before = await collect(first, 'lobby');
    for (let i = 0; i < 3; i++) eu.emit('lobby');
    await until(() => before.received.length === 3, 'three events');
    first.close(); // e.g. pagehide: written at once
    expect(storage.saved()).toEqual({ sessionId: 's-1', sender: 'tester', rooms: { lobby: { seq: 3, epoch: 'e1' } } });

    eu.emit('lobby');
    eu.emit('lobby');
    const second = await connect(eu.regions, { storage }); // a new client object: nothing in memory
    expect(eu.connections.at(-1)!.url.searchParams.get('session')).toBe('s-1');
    const after = await collect(second, 'lobby');
    await until(() => after.received.length === 2, 'the two missed events');
    expect(eu.joinRequests.at(-1)).toEqual({ room: 'lobby', since: 3, epoch: 'e1' });
    expect(after.received).toEqual([
      { seq: 4, replayed: true },
      { seq: 5, replayed: true },
    ]);
  });

  it("storage is preferred over the server's restored position (the client's own is exact), and ignored for another sender", async () => {
    const eu = await region();
    for (let i = 0; i < 6; i++) eu.emit('lobby');
    eu.welcome = () => ({ session_id: 's-2', restored: { lobby: { seq: 2, epoch: 'e1' }, news: { seq: 0, epoch: 'e1' } } });
    const storage = new MemoryStorage();
    storage.setItem('geo-ws', JSON.stringify({ sessionId: 's-2', sender: 'tester', rooms: { lobby: { seq: 5, epoch: 'e1' } } }));
    const client = await connect(eu.regions, { storage });
    await collect(client, 'lobby');
    await collect(client, 'news');
    expect(eu.joinRequests).toEqual([
      { room: 'lobby', since: 5, epoch: 'e1' },
      { room: 'news', since: 0, epoch: 'e1' },
    ]);

    const other = new MemoryStorage();
    other.setItem('geo-ws', JSON.stringify({ sender: 'someone-else', rooms: { lobby: { seq: 5, epoch: 'e1' } } }));
    eu.welcome = () => ({});
    const stranger = await connect(eu.regions, { storage: other, storageKey: 'geo-ws' });
    await collect(stranger, 'lobby');
    expect(eu.joinRequests.at(-1)).toEqual({ room: 'lobby' }); // live only: not the other sender's position
  });

  it('storage writes are coalesced (not one per event); a left room is dropped; a failing storage costs nothing else', async () => {
    const eu = await region();
    const storage = new MemoryStorage();
    const client = await connect(eu.regions, { storage });
    const lobby = await collect(client, 'lobby');
    await collect(client, 'news');
    await new Promise((resolve) => setTimeout(resolve, STORAGE_WRITE_MS * 2));
    const writes = storage.writes;
    for (let i = 0; i < 200; i++) eu.emit('lobby');
    await until(() => lobby.received.length === 200, '200 events');
    await new Promise((resolve) => setTimeout(resolve, STORAGE_WRITE_MS * 2));
    expect(storage.writes - writes).toBeLessThanOrEqual(3);
    expect(storage.saved().rooms).toEqual({ lobby: { seq: 200, epoch: 'e1' }, news: { seq: 0, epoch: 'e1' } });
    client.leave('news');
    await new Promise((resolve) => setTimeout(resolve, STORAGE_WRITE_MS * 2));
    expect(Object.keys(storage.saved().rooms)).toEqual(['lobby']);

    storage.failing = true;
    eu.emit('lobby');
    await until(() => lobby.received.length === 201, 'an event while the storage fails');
    await new Promise((resolve) => setTimeout(resolve, STORAGE_WRITE_MS * 2));
    expect(client.state).toBe('open');
  });

  it('pagehide (a reload or a closed tab) writes the positions at once, before the coalescing delay', async () => {
    const page = new EventTarget();
    const scope = globalThis as { addEventListener?: unknown; removeEventListener?: unknown };
    scope.addEventListener = page.addEventListener.bind(page);
    scope.removeEventListener = page.removeEventListener.bind(page);
    try {
      const eu = await region();
      const storage = new MemoryStorage();
      const client = await connect(eu.regions, { storage });
      const lobby = await collect(client, 'lobby');
      await new Promise((resolve) => setTimeout(resolve, STORAGE_WRITE_MS * 2));
      eu.emit('lobby');
      await until(() => lobby.received.length === 1, 'an event');
      expect(storage.saved().rooms.lobby.seq).toBe(0); // not yet written
      page.dispatchEvent(new Event('pagehide'));
      expect(storage.saved().rooms.lobby.seq).toBe(1);
    } finally {
      delete scope.addEventListener;
      delete scope.removeEventListener;
    }
  });

  it('saved positions are read defensively: garbage or a wrong shape is no position', () => {
    expect(parseSaved(null)).toEqual({ rooms: {} });
    expect(parseSaved('"text"')).toEqual({ rooms: {} });
    expect(
      parseSaved(
        JSON.stringify({ sessionId: 7, sender: 'a', rooms: { ok: { seq: 3, epoch: 'e' }, bad: { seq: -1, epoch: 'e' }, no: { seq: 1 } } }),
      ),
    ).toEqual({ sender: 'a', rooms: { ok: { seq: 3, epoch: 'e' } } });
    expect(() => parseSaved('{not json')).toThrow();
  });
});
