import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { globalLog, regionalLog } from '@geo-ws/nest';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

/**
 * Every class of bad input gets its stable geo.error code, the connection stays usable,
 * other clients see nothing, and nothing is appended.
 */
describe('bad input: stable error codes, nothing appended, connection still usable', () => {
  let deployment: Deployment;
  let client: WsTestClient;
  let bystander: WsTestClient;
  const name = `bad-${randomUUID().slice(0, 8)}`;
  const maxPayloadBytes = 2048;

  const logLength = async () => {
    const transport = deployment.region('eu').transport;
    const global = await transport.read(globalLog(name), 0, 1000);
    const regional = await transport.read(regionalLog(name, 'eu'), 0, 1000);
    return global.events.length + regional.events.length;
  };

  /** Sends something bad, expects `code`, then proves the connection still works and the log did not grow. */
  async function expectRefused(code: string, send: () => void, expectEventId?: string): Promise<void> {
    const before = await logLength();
    const errorsBefore = client.errors().length;
    send();
    const error = await client.next('geo.error', (data) => data.code === code);
    expect(error.message).toEqual(expect.any(String));
    if (expectEventId) expect(error.event_id).toBe(expectEventId);
    expect(client.errors()).toHaveLength(errorsBefore + 1);
    expect(await logLength()).toBe(before);
    expect(client.isOpen).toBe(true);
    const ok = await client.publish('note.add', name, { text: 'still works' });
    expect(ok.seq).toBe(before + 1);
  }

  beforeAll(async () => {
    deployment = await deployRegions(['eu', 'us'], {
      // A slow refill: the flood below must empty the bucket however long a loaded machine
      // takes to read it (at 50/s, a CI run that read the 151 frames over a second refilled
      // enough for the last one to pass).
      geo: { limits: { maxPayloadBytes, maxRoomsPerConnection: 3, rate: { perSecond: 5, burst: 100 } } },
    });
    client = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'mallory' });
    bystander = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'bystander' });
    await client.join(name);
    await bystander.join(name);
  });

  afterAll(async () => {
    client.close();
    bystander.close();
    await deployment.close();
  });

  it('MALFORMED_FRAME: not JSON, not an object, no event name, binary garbage', async () => {
    await expectRefused('MALFORMED_FRAME', () => client.sendRaw('{"event": "note.add", "data": '));
    await expectRefused('MALFORMED_FRAME', () => client.sendRaw('[1, 2, 3]'));
    await expectRefused('MALFORMED_FRAME', () => client.sendRaw(JSON.stringify({ data: { room_id: name } })));
    await expectRefused('MALFORMED_FRAME', () => client.sendRaw(Buffer.from([0xff, 0xfe, 0x00, 0x81]), true));
    await expectRefused('MALFORMED_FRAME', () => client.sendRaw('['.repeat(1000) + ']'.repeat(1000)));
  });

  it('MALFORMED_FRAME: data nested deeper than limits.maxDepth (32), refused before any pipe or encoder recurses into it', async () => {
    for (const depth of [33, 900]) {
      // within this suite's 2 KiB frames; deeper ones: hostile-clients.e2e-spec.ts
      const eventId = randomUUID();
      const deep = '['.repeat(depth) + ']'.repeat(depth);
      await expectRefused(
        'MALFORMED_FRAME',
        () => client.sendRaw(`{"event":"note.add","data":{"event_id":"${eventId}","room_id":"${name}","data":{"text":${deep}}}}`),
        eventId,
      );
    }
  });

  it('binary frames holding UTF-8 JSON are accepted like text frames', async () => {
    const eventId = randomUUID();
    client.sendRaw(
      Buffer.from(JSON.stringify({ event: 'note.add', data: { event_id: eventId, room_id: name, data: { text: 'binary' } } })),
      true,
    );
    expect((await client.next('geo.ack', (data) => data.event_id === eventId)).seq).toEqual(expect.any(Number));
  });

  it('UNKNOWN_EVENT: no handler has this name', async () => {
    const eventId = randomUUID();
    await expectRefused('UNKNOWN_EVENT', () => client.send('note.nope', { event_id: eventId, room_id: name, data: {} }), eventId);
  });

  it('INVALID_ENVELOPE: missing or malformed fields, forged server-owned fields', async () => {
    const id = () => randomUUID();
    await expectRefused('INVALID_ENVELOPE', () => client.send('note.add', { room_id: name, data: { text: 'x' } }));
    await expectRefused('INVALID_ENVELOPE', () =>
      client.send('note.add', { event_id: 'not a valid id!', room_id: name, data: { text: 'x' } }),
    );
    await expectRefused('INVALID_ENVELOPE', () => client.send('note.add', { event_id: id(), data: { text: 'x' } }));
    await expectRefused('INVALID_ENVELOPE', () => client.send('note.add', { event_id: id(), room_id: 'has space', data: { text: 'x' } }));
    await expectRefused('INVALID_ENVELOPE', () => client.send('note.add', { event_id: id(), room_id: name }));
    await expectRefused('INVALID_ENVELOPE', () => client.send('note.add', 'just a string'));
    for (const forged of ['sender', 'region', 'seq', 'timestamp', 'type']) {
      const eventId = id();
      await expectRefused(
        'INVALID_ENVELOPE',
        () => client.send('note.add', { event_id: eventId, room_id: name, data: { text: 'x' }, [forged]: 'forged' }),
        eventId,
      );
    }
    await expectRefused('INVALID_ENVELOPE', () => client.send('geo.join', { room: name, since: -1 }));
  });

  it('NOT_JOINED: publishing to or leaving a room the connection is not in', async () => {
    const eventId = randomUUID();
    await expectRefused(
      'NOT_JOINED',
      () => client.send('note.add', { event_id: eventId, room_id: 'elsewhere', data: { text: 'x' } }),
      eventId,
    );
    await expectRefused('NOT_JOINED', () => client.send('geo.leave', { room: 'elsewhere' }));
  });

  it('PAYLOAD_TOO_LARGE: over maxPayloadBytes is refused and the connection stays open', async () => {
    const eventId = randomUUID();
    await expectRefused(
      'PAYLOAD_TOO_LARGE',
      () => client.send('note.add', { event_id: eventId, room_id: name, data: { text: 'x'.repeat(maxPayloadBytes) } }),
      eventId,
    );
  });

  it('VALIDATION_FAILED: the handler DTO (class-validator) rejects the payload', async () => {
    const eventId = randomUUID();
    await expectRefused(
      'VALIDATION_FAILED',
      () => client.send('note.add', { event_id: eventId, room_id: name, data: { text: '' } }),
      eventId,
    );
    await expectRefused('VALIDATION_FAILED', () =>
      client.send('note.add', { event_id: randomUUID(), room_id: name, data: { text: 'x', extra: 1 } }),
    );
  });

  it('FORBIDDEN: a user guard refuses', async () => {
    const eventId = randomUUID();
    await expectRefused('FORBIDDEN', () => client.send('admin.note', { event_id: eventId, room_id: name, data: {} }), eventId);
  });

  it('REJECTED and chosen codes: a handler throws WsException', async () => {
    await expectRefused('REJECTED', () => client.send('note.reject', { event_id: randomUUID(), room_id: name, data: {} }));
    await expectRefused('UNAUTHORIZED', () =>
      client.send('note.reject', { event_id: randomUUID(), room_id: name, data: { code: 'UNAUTHORIZED' } }),
    );
  });

  it('TOO_MANY_ROOMS: past maxRoomsPerConnection', async () => {
    await client.join(`${name}-2`);
    await client.join(`${name}-3`);
    await expectRefused('TOO_MANY_ROOMS', () => client.send('geo.join', { room: `${name}-4` }));
  });

  it('RATE_LIMITED: a burst past the token bucket is refused frame by frame, and the client recovers', async () => {
    // Three times the burst: frames are taken in turn, and under load the bucket refills while
    // the first hundred are appended, so the refusals may come seconds after the flood.
    const flood = Array.from({ length: 300 }, () => randomUUID());
    for (const eventId of flood) client.send('note.add', { event_id: eventId, room_id: name, data: { text: 'flood' } });
    client.send('geo.join', { room: `${name}-limited` }); // a refused join names its room, so the client can retry it
    const limited = await client.next('geo.error', (data) => data.code === 'RATE_LIMITED', 30_000);
    expect(flood).toContain(limited.event_id);
    expect(limited.room).toBe(name);
    expect(await client.next('geo.error', (data) => data.code === 'RATE_LIMITED' && data.room === `${name}-limited`, 30_000)).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 1500)); // the bucket refills (7 tokens)
    const ok = await client.publish('note.add', name, { text: 'after the flood' });
    expect(ok.seq).toEqual(expect.any(Number));
  }, 70_000);

  it('UNAUTHORIZED at the handshake: a refused identity gets HTTP 401 before the socket opens', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const socket = new WebSocket(`${deployment.region('eu').wsUrl}?name=nobody`);
      socket.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
      socket.once('open', () => reject(new Error('the socket opened')));
      socket.once('error', () => undefined);
    });
    expect(status).toBe(401);
  });

  it('a frame past the hard cap closes only that connection (1009); others keep working', async () => {
    const victim = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'oversize' });
    victim.sendRaw('x'.repeat(maxPayloadBytes * 3));
    expect(await victim.waitForClose()).toBe(1009);
    expect(client.isOpen).toBe(true);
    expect(bystander.isOpen).toBe(true);
  });

  it('the bystander never saw an error and received exactly the accepted events, in order', async () => {
    const accepted = (await deployment.region('eu').transport.read(globalLog(name), 0, 1000)).events;
    await bystander.waitForEvents(name, accepted.length);
    expect(bystander.errors()).toEqual([]);
    expect(bystander.events(name)).toEqual(accepted);
  });
});
