import { afterEach, describe, expect, it } from '@jest/globals';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import type { GeoLoggedEnvelope } from '../envelope/geo-envelope.interface.js';
import { ClientConnection, type ConnectionLimits } from './client-connection.js';

const limits = (maxBufferedBytes: number): ConnectionLimits => ({
  rate: { perSecond: 100, burst: 100 },
  refusals: { perSecond: 10, burst: 10 },
  replay: { perSecond: 1000, burst: 1000 },
  maxBufferedBytes,
});

const event = (seq: number, text: string): GeoLoggedEnvelope => ({
  event_id: `e${seq}`,
  room_id: 'room',
  type: 'message',
  sender: 'alice',
  timestamp: new Date(0).toISOString(),
  region: 'eu',
  seq,
  data: { text },
});

describe('ClientConnection deliveries', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0)) await step();
  });

  async function connected(maxBufferedBytes: number): Promise<{ connection: ClientConnection; client: WebSocket; slow: string[] }> {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((resolve) => wss.once('listening', resolve));
    const accepted = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
    const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
    await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
    const slow: string[] = [];
    const connection = new ClientConnection(await accepted, { id: 'bob' }, 'eu', limits(maxBufferedBytes), {
      evicted: () => undefined,
      slowConsumer: (which) => slow.push(which.id),
      expired: () => undefined,
    });
    cleanup.push(async () => {
      client.terminate();
      await new Promise((resolve) => wss.close(resolve));
    });
    return { connection, client, slow };
  }

  it('a reading client gets a burst handed over in one tick, bigger than its buffer limit, without being closed', async () => {
    const { connection, client, slow } = await connected(16 * 1024);
    const seqs: number[] = [];
    const all = new Promise<void>((resolve) =>
      client.on('message', (raw: Buffer) => {
        seqs.push((JSON.parse(raw.toString()) as { data: { seq: number } }).data.seq);
        if (seqs.length === 200) resolve();
      }),
    );
    // 200 events of ~1 KiB in one synchronous pass, as a tail's batch arrives: ~12x the limit.
    for (let seq = 1; seq <= 200; seq++) connection.deliver(event(seq, 'x'.repeat(1000)));
    await all;
    expect(seqs).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(slow).toEqual([]);
    expect(client.readyState).toBe(WebSocket.OPEN);
  });

  it('a client that does not read is closed with 1013 once what the kernel did not take passes the limit', async () => {
    const { connection, client, slow } = await connected(16 * 1024);
    client.pause(); // stops reading its socket
    const closed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));
    for (let tick = 0; tick < 400 && slow.length === 0; tick++) {
      for (let i = 0; i < 10; i++) connection.deliver(event(tick * 10 + i + 1, 'y'.repeat(1000)));
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(slow).toEqual([connection.id]);
    client.resume();
    expect(await closed).toBe(1013);
  });
});
