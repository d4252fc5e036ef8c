import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { GeoClient, type GeoClientOptions, type GeoEnvelope } from '@geo-ws/client';
import { msgpackCodec } from '@geo-ws/client/msgpack';
import { waitFor } from '@geo-ws/nest/testing';
import { deployRegions, type Deployment } from './support/regions.js';

/**
 * Issue #14 on real regions (three Nest apps on real sockets, one memory network): JSON and
 * MessagePack members of one room, publishing on both codecs, see the same events in the
 * same order; permessage-deflate really compresses; hostile MessagePack is refused with
 * its stable code while a bystander keeps receiving.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The built SDK and its MessagePack entry (npm run build), as an app imports them. */
const SDK = pathToFileURL(path.join(ROOT, 'libs/geo-ws-client/dist/index.js')).href;
const SDK_MSGPACK = pathToFileURL(path.join(ROOT, 'libs/geo-ws-client/dist/msgpack.js')).href;
/** A Node script on the global WebSocket (undici; behind a flag before Node 22): MessagePack both ways. */
const GLOBAL_WEBSOCKET_SCRIPT = `
import { GeoClient } from ${JSON.stringify(SDK)};
import { msgpackCodec } from ${JSON.stringify(SDK_MSGPACK)};
const { directoryUrl, room } = JSON.parse(process.env.WIRE_E2E);
const client = await GeoClient.connect({ directoryUrl, pinRegion: 'us', probe: async () => 1, query: { name: 'nodeglobal' }, codec: msgpackCodec });
const seen = [];
await client.join(room, (event) => seen.push(event.data.text));
const ack = await client.publish(room, 'note.add', { text: 'from the global WebSocket' });
while (seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
console.log(JSON.stringify({ socket: typeof WebSocket, seq: ack.seq, seen }));
client.close();
`;

/** Frames from 256 bytes up are compressed, for clients that offer permessage-deflate. */
const THRESHOLD = 256;
const MAX_PAYLOAD = 4096;

interface Frame {
  event: string;
  data: any;
}

/** A raw client of either codec (no SDK): records decoded frames, counts the bytes its TCP socket read. */
class RawClient {
  readonly frames: Frame[] = [];
  /** The server's Sec-WebSocket-Extensions answer: the negotiated parameters. */
  extensionsHeader = '';
  private constructor(
    readonly socket: WebSocket,
    readonly codec: 'json' | 'msgpack',
  ) {
    socket.on('message', (raw: Buffer, binary) =>
      this.frames.push((binary && codec === 'msgpack' ? msgpackCodec.decode(raw) : JSON.parse(raw.toString())) as Frame),
    );
    socket.on('error', () => undefined);
  }

  static async connect(url: string, name: string, codec: 'json' | 'msgpack', deflate: boolean): Promise<RawClient> {
    const protocols = codec === 'msgpack' ? ['geo-ws.v1.msgpack'] : ['geo-ws.v1'];
    const socket = new WebSocket(`${url}?name=${name}`, protocols, { perMessageDeflate: deflate });
    const client = new RawClient(socket, codec);
    socket.once('upgrade', (response) => (client.extensionsHeader = response.headers['sec-websocket-extensions'] ?? ''));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    await client.next('geo.welcome');
    return client;
  }

  get tcpBytesRead(): number {
    return (this.socket as unknown as { _socket: Socket })._socket.bytesRead;
  }

  send(frame: Frame): void {
    if (this.codec === 'msgpack') this.socket.send(msgpackCodec.encode(frame));
    else this.socket.send(JSON.stringify(frame));
  }

  async next(event: string, where: (data: any) => boolean = () => true): Promise<any> {
    let found: Frame | undefined;
    await waitFor(() => (found = this.frames.find((frame) => frame.event === event && where(frame.data))) !== undefined, event, 5000);
    this.frames.splice(this.frames.indexOf(found!), 1);
    return found!.data;
  }

  async join(room: string): Promise<void> {
    this.send({ event: 'geo.join', data: { room } });
    await this.next('geo.joined', (data) => data.room === room);
  }

  close(): void {
    this.socket.close();
  }
}

describe('wire codecs: JSON, MessagePack and permessage-deflate across three regions', () => {
  let deployment: Deployment;
  const clients: GeoClient[] = [];
  const raws: RawClient[] = [];

  const sdk = async (name: string, region: string, options: Partial<GeoClientOptions> = {}): Promise<GeoClient> => {
    const client = await GeoClient.connect({
      directoryUrl: deployment.region(region).url,
      WebSocket,
      pinRegion: region,
      probe: async () => 1,
      query: { name },
      ...options,
    });
    clients.push(client);
    return client;
  };
  const raw = async (name: string, codec: 'json' | 'msgpack', deflate = false): Promise<RawClient> => {
    const client = await RawClient.connect(deployment.region('eu').wsUrl, name, codec, deflate);
    raws.push(client);
    return client;
  };

  beforeAll(async () => {
    deployment = await deployRegions(['asia', 'eu', 'us'], {
      geo: { compression: { thresholdBytes: THRESHOLD }, limits: { maxPayloadBytes: MAX_PAYLOAD, refusals: { perSecond: 10, burst: 50 } } },
    });
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    for (const client of raws) client.close();
    await deployment.close();
  });

  it('MessagePack and JSON members in three regions, publishing on both codecs, receive the same events in the same order', async () => {
    const room = `codecs-${randomUUID().slice(0, 8)}`;
    const members = [
      { name: 'ana', region: 'asia', codec: msgpackCodec },
      { name: 'eva', region: 'eu', codec: undefined },
      { name: 'uma', region: 'us', codec: msgpackCodec },
      { name: 'ugo', region: 'us', codec: undefined },
    ];
    const received = new Map<string, GeoEnvelope[]>();
    const connected: GeoClient[] = [];
    for (const member of members) {
      const client = await sdk(member.name, member.region, member.codec ? { codec: member.codec } : {});
      const events: GeoEnvelope[] = [];
      received.set(member.name, events);
      await client.join(room, (event) => events.push(event));
      connected.push(client);
    }
    const [ana, eva, uma, ugo] = connected;
    const publishes: Promise<unknown>[] = [];
    for (let i = 0; i < 15; i++) {
      publishes.push(ana.publish(room, 'note.add', { text: `ana ${i} ${'é'.repeat(i * 5)}` }));
      publishes.push(eva.publish(room, 'note.add', { text: `eva ${i}` }));
      publishes.push(uma.publish(room, 'note.add', { text: `uma ${i}` }));
      publishes.push(ugo.publish(room, 'note.add', { text: `ugo ${i} ${'x'.repeat(i * 6)}` }));
    }
    await Promise.all(publishes);
    await waitFor(() => [...received.values()].every((events) => events.length === 60), 'every member has the 60 events', 10_000);
    const reference = received.get('eva')!;
    expect(reference.map((event) => event.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    for (const [, events] of received) expect(events).toEqual(reference); // same envelopes, field by field, same order
    expect(new Set(reference.map((event) => event.sender))).toEqual(new Set(['ana', 'eva', 'uma', 'ugo']));
    // The handlers saw each connection's codec (GeoConnection.codec), from its subprotocol.
    const codecOf = (sender: string) =>
      deployment.regions.flatMap((region) => region.gateway.seen).find((seen) => seen.user?.id === sender)?.connection?.codec;
    expect(members.map((member) => codecOf(member.name))).toEqual(['msgpack', 'json', 'msgpack', 'json']);
  });

  it('permessage-deflate: a client that offers it gets compressed frames (no context takeover), one that does not gets them whole', async () => {
    const room = `deflate-${randomUUID().slice(0, 8)}`;
    const publisher = await raw('pat', 'json');
    const deflateJson = await raw('dee', 'json', true);
    const deflateMsgpack = await raw('dom', 'msgpack', true);
    const plain = await raw('pia', 'json', false);
    for (const client of [publisher, deflateJson, deflateMsgpack, plain]) await client.join(room);
    expect(deflateJson.socket.extensions).toContain('permessage-deflate');
    expect(deflateJson.extensionsHeader).toContain('server_no_context_takeover');
    expect(deflateJson.extensionsHeader).toContain('client_no_context_takeover');
    expect(deflateMsgpack.socket.extensions).toContain('permessage-deflate');
    expect(plain.socket.extensions).toBe('');
    const text = 'the same words again and again; '.repeat(100); // 3,200 bytes, compresses well (note.shout has no length rule)
    const before = [deflateJson, deflateMsgpack, plain].map((client) => client.tcpBytesRead);
    publisher.send({ event: 'note.shout', data: { event_id: randomUUID(), room_id: room, data: { text } } });
    const events = await Promise.all([deflateJson, deflateMsgpack, plain].map((client) => client.next('note.shout')));
    for (const event of events) expect(event.data).toEqual({ text: text.toUpperCase() });
    const read = [deflateJson, deflateMsgpack, plain].map((client, i) => client.tcpBytesRead - before[i]);
    expect(read[0]).toBeLessThan(600);
    expect(read[1]).toBeLessThan(600);
    expect(read[2]).toBeGreaterThan(3200);
    // A small control frame stays below the threshold and is sent as it is; the connection works both ways.
    deflateMsgpack.send({ event: 'geo.ping', data: { t: 1 } });
    expect(await deflateMsgpack.next('geo.pong')).toEqual({ t: 1 });
  });

  it('hostile MessagePack (depth bomb, huge length prefix, wrong frame type, the key __proto__) gets MALFORMED_FRAME; a bystander keeps receiving', async () => {
    const room = `hostile-${randomUUID().slice(0, 8)}`;
    const mallory = await raw('mallory', 'msgpack');
    const jsonMallory = await raw('jason', 'json');
    const bystander = await sdk('bea', 'eu', { codec: msgpackCodec });
    const seen: string[] = [];
    await bystander.join(room, (event) => seen.push((event.data as { text: string }).text));
    await mallory.join(room);
    const head = Buffer.from('82a56576656e74a86e6f74652e616464a464617461', 'hex'); // {event: 'note.add', data: …
    const attacks: [string, () => void][] = [
      ['depth bomb', () => mallory.socket.send(Buffer.concat([head, Buffer.alloc(MAX_PAYLOAD - 40, 0x91), Buffer.from([0xc0])]))],
      ['array of 2^32-1', () => mallory.socket.send(Buffer.concat([head, Buffer.from('ddffffffffc0', 'hex')]))],
      ['string of 4 GB', () => mallory.socket.send(Buffer.concat([head, Buffer.from('dbfffffff061', 'hex')]))],
      ['a timestamp extension', () => mallory.socket.send(Buffer.concat([head, Buffer.from('d6ff00000000', 'hex')]))],
      ['a number as a map key', () => mallory.socket.send(Buffer.concat([head, Buffer.from('8101c0', 'hex')]))],
      ['a text frame on a MessagePack connection', () => mallory.socket.send(JSON.stringify({ event: 'geo.ping', data: {} }))],
    ];
    for (const [i, [what, attack]] of attacks.entries()) {
      attack();
      const error = await mallory.next('geo.error');
      expect({ what, code: error.code }).toEqual({ what, code: 'MALFORMED_FRAME' });
      await bystander.publish(room, 'note.add', { text: `after ${i}` });
    }
    // The key MessagePack readers rename to __proto_ (JSON keeps it): refused in both codecs, naming the publish.
    for (const [i, attacker] of [mallory, jsonMallory].entries()) {
      const data = JSON.parse(`{"event_id":"proto-${i}","room_id":"${room}","data":{"list":[{"__proto__":{"admin":true}}]}}`) as object;
      attacker.send({ event: 'note.add', data });
      const error = await attacker.next('geo.error');
      expect({ codec: attacker.codec, code: error.code, event_id: error.event_id }).toEqual({
        codec: attacker.codec,
        code: 'MALFORMED_FRAME',
        event_id: `proto-${i}`,
      });
    }
    // MessagePack on a JSON connection.
    jsonMallory.socket.send(msgpackCodec.encode({ event: 'geo.ping', data: { t: 1 } }));
    expect((await jsonMallory.next('geo.error')).message).toMatch(/geo-ws\.v1\.msgpack/);
    await waitFor(() => seen.length === attacks.length, 'the bystander receives every event', 5000);
    expect(seen).toEqual(attacks.map((_, i) => `after ${i}`));
    // Still served: the region answers the attacker too.
    mallory.send({ event: 'geo.ping', data: { t: 2 } });
    expect(await mallory.next('geo.pong')).toEqual({ t: 2 });
  });

  it("Node's global WebSocket (undici) with the MessagePack codec: publishes and receives", async () => {
    const room = `undici-${randomUUID().slice(0, 8)}`;
    const dir = mkdtempSync(path.join(tmpdir(), 'wire-e2e-'));
    try {
      writeFileSync(path.join(dir, 'script.mjs'), GLOBAL_WEBSOCKET_SCRIPT);
      const flags = Number(process.versions.node.split('.')[0]) < 22 ? ['--experimental-websocket'] : [];
      // Async: the regions answering it run in this process.
      const run = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [...flags, path.join(dir, 'script.mjs')], {
          env: { ...process.env, NODE_NO_WARNINGS: '1', WIRE_E2E: JSON.stringify({ directoryUrl: deployment.region('us').url, room }) },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.on('exit', (status) => {
          clearTimeout(killer);
          resolve({ status, stdout, stderr });
        });
      });
      expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
      expect(JSON.parse(run.stdout)).toEqual({ socket: 'function', seq: 1, seen: ['from the global WebSocket'] });
      const codec = deployment.region('us').gateway.seen.find((seen) => seen.user?.id === 'nodeglobal')?.connection?.codec;
      expect(codec).toBe('msgpack');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
