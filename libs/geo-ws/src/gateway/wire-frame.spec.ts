import { describe, expect, it } from '@jest/globals';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type PerMessageDeflateOptions } from 'ws';
import { unpackMsgpack } from '../protocol/msgpack.js';
import type { GeoWireCodec } from '../protocol/wire.js';
import { deflatedFrame, encodeFrame, encodeTextFrame, FrameWriter, LastFrame, type WireFrame } from './wire-frame.js';

/** A real server and client; `perMessageDeflate` negotiates the extension that forces `ws.send`. */
async function pair(
  perMessageDeflate: boolean | PerMessageDeflateOptions,
): Promise<{ server: WebSocket; client: WebSocket; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate });
  await new Promise((resolve) => wss.once('listening', resolve));
  const accepted = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { perMessageDeflate: !!perMessageDeflate });
  await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
  const server = await accepted;
  const close = async (): Promise<void> => {
    client.terminate();
    await new Promise((resolve) => wss.close(resolve));
  };
  return { server, client, close };
}

function collect(client: WebSocket, count: number): Promise<{ text: string; binary: boolean; bytes: Buffer }[]> {
  const received: { text: string; binary: boolean; bytes: Buffer }[] = [];
  return new Promise((resolve) => {
    client.on('message', (data: Buffer, binary) => {
      received.push({ text: data.toString(), binary, bytes: data });
      if (received.length === count) resolve(received);
    });
  });
}

describe('wire frames', () => {
  it('builds a valid unmasked text frame for every payload length class (7-bit, 16-bit, 64-bit)', async () => {
    const { server, client, close } = await pair(false);
    const texts = ['', 'héllo', 'x'.repeat(125), 'y'.repeat(126), 'z'.repeat(70_000)];
    const received = collect(client, texts.length);
    const writer = new FrameWriter(server);
    for (const text of texts) writer.write(encodeTextFrame(text));
    expect((await received).map(({ text, binary }) => ({ text, binary }))).toEqual(texts.map((text) => ({ text, binary: false })));
    await close();
  });

  it('keeps the order of pre-built frames and ws.send frames written in the same tick', async () => {
    const { server, client, close } = await pair(false);
    const received = collect(client, 4);
    const writer = new FrameWriter(server);
    writer.write(encodeTextFrame('1'));
    server.send('2');
    writer.write(encodeTextFrame('3'));
    server.send('4');
    expect((await received).map((message) => message.text)).toEqual(['1', '2', '3', '4']);
    await close();
  });

  it('batches the writes of one tick into one corked flush', async () => {
    const { server, client, close } = await pair(false);
    const received = collect(client, 3);
    const writer = new FrameWriter(server);
    const tcp = (server as unknown as { _socket: import('node:net').Socket })._socket;
    writer.write(encodeTextFrame('a'));
    writer.write(encodeTextFrame('b'));
    writer.write(encodeTextFrame('c'));
    // Held until the tick ends, and counted as buffered meanwhile (the slow-consumer limit sees it).
    expect(tcp.writableCorked).toBe(1);
    expect(server.bufferedAmount).toBe(9);
    expect((await received).map((message) => message.text)).toEqual(['a', 'b', 'c']);
    expect(tcp.writableCorked).toBe(0);
    await close();
  });

  it('goes through ws.send when permessage-deflate is negotiated (the frame must be compressed)', async () => {
    const { server, client, close } = await pair(true);
    expect(server.extensions).toContain('permessage-deflate');
    const received = collect(client, 2);
    const sent: unknown[] = [];
    const send = server.send.bind(server);
    server.send = ((data: Buffer, options: object) => {
      sent.push(data);
      send(data, options);
    }) as typeof server.send;
    const writer = new FrameWriter(server);
    writer.write(encodeTextFrame('compressed one'));
    writer.write(encodeTextFrame('x'.repeat(2_000)));
    expect((await received).map((message) => message.text)).toEqual(['compressed one', 'x'.repeat(2_000)]);
    // An uncompressed frame would be legal too, so check the path: both went through ws.send.
    expect(sent).toHaveLength(2);
    await close();
  });

  it('compression on: deflates each event once for every member, writes it directly, small frames whole, in order with ws.send', async () => {
    const geoDeflate = { serverNoContextTakeover: true, clientNoContextTakeover: true };
    const members = await Promise.all([pair(geoDeflate), pair(geoDeflate), pair(geoDeflate)]);
    const long = 'the same words again and again; '.repeat(200); // 6,400 bytes
    const frames = [encodeTextFrame(long), encodeTextFrame('short'), encodeFrame({ event: 'chat', data: { text: long } }, 'msgpack')];
    const zlibCalls: Buffer[] = [];
    for (const { server, client } of members) {
      const tcp = (client as unknown as { _socket: import('node:net').Socket })._socket;
      const before = tcp.bytesRead;
      const received = collect(client, 4);
      const sends: unknown[] = [];
      const send = server.send.bind(server);
      server.send = ((data: Buffer, options: object) => (sends.push(data), send(data, options))) as typeof server.send;
      const writer = new FrameWriter(server, { thresholdBytes: 64, level: 3 });
      writer.write(frames[0]);
      server.send('control', { compress: false }); // ClientConnection.send, between two events of one tick
      writer.write(frames[1]);
      writer.write(frames[2]);
      const messages = await received;
      expect(messages.map((message) => (message.binary ? unpackMsgpack(message.bytes) : message.text))).toEqual([
        long,
        'control',
        'short',
        { event: 'chat', data: { text: long } },
      ]);
      expect(sends).toHaveLength(1); // only the control frame went through ws
      expect(tcp.bytesRead - before).toBeLessThan(600); // 12,800 bytes of text, compressed
      zlibCalls.push(frames[0].deflated!.bytes);
    }
    // One compressed frame per event, shared by the three members.
    expect(new Set(zlibCalls).size).toBe(1);
    expect(deflatedFrame(frames[0], 3)).toBe(zlibCalls[0]);
    expect(frames[1].deflated).toBeUndefined(); // below the threshold: never compressed
    for (const { close } of members) await close();
  });

  it('compression on, but the client asked for a smaller window: ws.send compresses for it', async () => {
    const { server, client, close } = await pair({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10 });
    const received = collect(client, 1);
    let sends = 0;
    const send = server.send.bind(server);
    server.send = ((data: Buffer, options: object) => (sends++, send(data, options))) as typeof server.send;
    new FrameWriter(server, { thresholdBytes: 64, level: 3 }).write(encodeTextFrame('y'.repeat(500)));
    expect((await received)[0].text).toBe('y'.repeat(500));
    expect(sends).toBe(1);
    await close();
  });

  it('writes MessagePack events as binary frames, directly and through ws.send (deflate)', async () => {
    for (const deflate of [false, true]) {
      const { server, client, close } = await pair(deflate);
      const received = collect(client, 2);
      const writer = new FrameWriter(server);
      const events = [
        { event: 'chat', data: { text: 'hi' } },
        { event: 'chat', data: { text: 'y'.repeat(70_000) } },
      ];
      for (const event of events) writer.write(encodeFrame(event, 'msgpack'));
      const messages = await received;
      expect(messages.map((message) => message.binary)).toEqual([true, true]);
      expect(messages.map((message) => unpackMsgpack(message.bytes))).toEqual(events);
      await close();
    }
  });
});

describe('LastFrame: one encode per event per codec', () => {
  it('a room of JSON and MessagePack members, in any order, costs one encode of each codec per event', () => {
    const encodes: GeoWireCodec[] = [];
    const frames = new LastFrame(
      (event) => ({ event: 'chat', data: event }),
      (value, codec): WireFrame => {
        encodes.push(codec);
        return encodeFrame(value, codec);
      },
    );
    const members: GeoWireCodec[] = ['json', 'msgpack', 'json', 'json', 'msgpack', 'msgpack', 'json'];
    for (const seq of [1, 2, 3]) {
      const event = { seq };
      const written = members.map((codec) => frames.of(event, codec));
      // Every member of a codec gets the very same bytes.
      expect(new Set(written.filter((_, i) => members[i] === 'json')).size).toBe(1);
      expect(new Set(written.filter((_, i) => members[i] === 'msgpack')).size).toBe(1);
    }
    expect(encodes).toEqual(['json', 'msgpack', 'json', 'msgpack', 'json', 'msgpack']);
  });

  it('a room of JSON members only never encodes MessagePack', () => {
    let encodes = 0;
    const frames = new LastFrame(
      (event) => event,
      (value, codec) => (encodes++, encodeFrame(value, codec)),
    );
    const event = { seq: 1 };
    for (let i = 0; i < 100; i++) expect(frames.of(event, 'json').binary).toBe(false);
    expect(encodes).toBe(1);
  });
});
