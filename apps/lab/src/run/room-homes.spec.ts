import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterEach, describe, expect, it } from '@jest/globals';

import type { RegionTarget } from '../load/load.types.js';
import { freePort } from '../topology/free-port.js';
import { askRoomHomes } from './room-homes.js';

const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A region's instance answering with `handle`; returns its target. */
async function region(name: string, handle: (room: string, response: ServerResponse) => void): Promise<RegionTarget> {
  const server = createServer((request, response) => {
    const match = /^\/geo\/rooms\/([^/]+)$/.exec(request.url ?? '');
    if (!match) {
      response.writeHead(400).end();
      return;
    }
    handle(decodeURIComponent(match[1]), response);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { region: name, httpUrl: url, wsUrl: url };
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

const rooms = Array.from({ length: 40 }, (_, i) => `room-${i}`);

describe('askRoomHomes', () => {
  it("every room's home (null: not placed) and term, asking each room's own target, a few at a time", async () => {
    let inFlight = 0;
    let most = 0;
    const asked: string[] = [];
    const answer = (name: string) => (room: string, response: ServerResponse) => {
      asked.push(`${name}:${room}`);
      most = Math.max(most, ++inFlight);
      setTimeout(() => {
        inFlight--;
        json(response, 200, {
          room,
          home: room === 'room-7' ? null : `home-of-${room}`,
          term: room === 'room-7' ? 0 : 1,
          placement: 'per-room',
        });
      }, 5);
    };
    const targets = [await region('asia', answer('asia')), await region('eu', answer('eu'))];
    const result = await askRoomHomes(rooms, (_, i) => [targets[i % 2]], { concurrency: 4 });
    expect(result).toEqual({
      homes: Object.fromEntries(rooms.map((room) => [room, room === 'room-7' ? null : `home-of-${room}`])),
      terms: Object.fromEntries(rooms.map((room) => [room, room === 'room-7' ? 0 : 1])),
    });
    // In the rooms' order, whatever order the answers came in.
    expect('homes' in result && Object.keys(result.homes)).toEqual(rooms);
    expect(asked).toHaveLength(rooms.length);
    expect(asked).toContain('asia:room-0');
    expect(asked).toContain('eu:room-1');
    expect(most).toBeLessThanOrEqual(4);
    expect(most).toBeGreaterThan(1);
  });

  it('404 (endpoint off, or a server from before it): not reported, and nothing more is asked', async () => {
    let asked = 0;
    const target = await region('asia', (_, response) => {
      asked++;
      response.writeHead(404).end('Not Found');
    });
    const result = await askRoomHomes(rooms, () => [target], { concurrency: 1 });
    expect(result).toEqual({ notReported: 'asia answered 404 for room-0' });
    expect(asked).toBe(1);
  });

  it('a region that does not answer is passed over for the next one', async () => {
    const down: RegionTarget = { region: 'us', httpUrl: `http://127.0.0.1:${await freePort()}`, wsUrl: '' };
    const broken = await region('asia', (_, response) => json(response, 503, { error: 'draining' }));
    const odd = await region('eu', (_, response) => json(response, 200, { room: 'x' }));
    const up = await region('eu', (room, response) => json(response, 200, { room, home: 'eu', term: 3 }));
    const result = await askRoomHomes(['room-0'], () => [down, broken, odd, up]);
    expect(result).toEqual({ homes: { 'room-0': 'eu' }, terms: { 'room-0': 3 } });
  });

  it('a server that gives no term: the homes alone', async () => {
    const older = await region('asia', (room, response) => json(response, 200, { room, home: 'asia' }));
    expect(await askRoomHomes(['room-0', 'room-1'], () => [older])).toEqual({
      homes: { 'room-0': 'asia', 'room-1': 'asia' },
      terms: {},
    });
  });

  it('no target answers in time: not reported, saying why', async () => {
    const silent = await region('asia', () => undefined);
    const started = Date.now();
    const result = await askRoomHomes(['room-0', 'room-1'], () => [silent], { timeoutMs: 100 });
    expect(Date.now() - started).toBeLessThan(2000);
    expect('notReported' in result && result.notReported).toMatch(/^no answer for room-\d \(asia: .*\)$/);
  });
});
