import { afterEach, describe, expect, it } from '@jest/globals';
import { jsonCodec } from './codec.js';
import { GeoClient, type GeoClientOptions } from './geo-client.js';
import { msgpackCodec } from './msgpack.js';
import type { GeoEnvelope } from './protocol.js';
import { FakeRegion, TEST_CLIENT_OPTIONS, until, within } from './testing/index.js';

/** The codec option against a fake region over a real WebSocket: the subprotocol offered, frame types, both directions. */
describe('GeoClient codecs', () => {
  const fakes: FakeRegion[] = [];
  const clients: GeoClient[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    for (const fake of fakes.splice(0)) await fake.close();
  });

  const start = async (options: Partial<GeoClientOptions>): Promise<{ fake: FakeRegion; client: GeoClient }> => {
    const fake = await FakeRegion.start();
    fakes.push(fake);
    const client = await within(GeoClient.connect({ regions: fake.regions, ...TEST_CLIENT_OPTIONS, ...options }), 3000, 'connect()');
    clients.push(client);
    return { fake, client };
  };

  it.each([
    ['with a token', { token: 't0k3n' }],
    ['without a token', {}],
  ])('msgpackCodec (%s): offers geo-ws.v1.msgpack, sends only binary frames, and reads binary frames', async (_, extra) => {
    const { fake, client } = await start({ codec: msgpackCodec, ...extra });
    const connection = fake.connections[0];
    expect(connection.codec).toBe('msgpack');
    expect(connection.socket.protocol).toBe('geo-ws.v1.msgpack');
    const received: GeoEnvelope[] = [];
    await client.join('room-1', (event) => received.push(event));
    const ack = await within(client.publish('room-1', 'chat.message', { text: 'héllo', at: new Date(0) }, 'p1'), 2000, 'ack');
    expect(ack.seq).toBe(1);
    fake.emit('room-1', { text: 'from the region' });
    await until(() => received.length === 2, 'both events');
    expect(received.map((event) => event.data)).toEqual([{ text: 'héllo', at: '1970-01-01T00:00:00.000Z' }, { text: 'from the region' }]);
    expect(connection.frames.map((frame) => frame.event)).toEqual(['geo.join', 'chat.message']);
    expect(connection.binaryFrames).toEqual([true, true]);
  });

  it('JSON stays the default: no subprotocol without a token (as before), text frames', async () => {
    const { fake, client } = await start({});
    expect(fake.connections[0].codec).toBe('json');
    expect(fake.connections[0].socket.protocol).toBe('');
    await client.join('room-1', () => undefined);
    await within(client.publish('room-1', 'chat.message', { text: 'x' }), 2000, 'ack');
    expect(fake.connections[0].binaryFrames).toEqual([false, false]);
  });

  it('a codec that is not one: INVALID_OPTIONS at construction', () => {
    expect(
      () => new GeoClient({ regions: [{ name: 'eu', url: 'http://127.0.0.1:9' }], ...TEST_CLIENT_OPTIONS, codec: {} as never }),
    ).toThrow(/codec must be a GeoCodec/);
  });

  it('msgpackCodec decodes what browsers (ArrayBuffer) and ws (Buffer, a view into a larger pool) hand over', () => {
    const frame = { event: 'geo.pong', data: { t: 1 } };
    const bytes = msgpackCodec.encode(frame) as Uint8Array;
    const pooled = Buffer.concat([Buffer.from([0xff, 0xff]), bytes]).subarray(2);
    expect(msgpackCodec.decode(pooled)).toEqual(frame);
    expect(msgpackCodec.decode(new Uint8Array(bytes).buffer)).toEqual(frame); // a copy: its own ArrayBuffer
    expect(jsonCodec.decode(new TextEncoder().encode(JSON.stringify(frame)).buffer)).toEqual(frame);
  });
});
