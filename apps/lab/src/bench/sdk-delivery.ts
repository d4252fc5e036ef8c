/**
 * The SDK's cost per delivered event and per joined room (#14: the consistency check is
 * on the delivery path): a `GeoClient` over an in-process WebSocket stand-in (no network,
 * no server), fed pre-encoded event frames as fast as it takes them. Prints µs per event
 * (parse, checks, handler) and the heap one joined room holds once it has received more
 * events than the duplicate check remembers.
 *
 * `npm run build && node --expose-gc apps/lab/dist/bench/sdk-delivery.js [--events 300000] [--rooms 1000] [--sdk <path of an @geo-ws/client build's index.js>]`
 * (`--sdk` compares another build, e.g. main's, on the same input.)
 */
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import type * as Sdk from '@geo-ws/client';

const OPEN = 1;

/** A frame the client sends: only `geo.join`'s room is read. */
interface ClientFrame {
  event: string;
  data: { room?: string };
}

/** A WebSocket that is open at once and hands the client's frames to `onSend`. */
function standIn(onSend: (socket: StandIn, frame: ClientFrame) => void) {
  return class implements StandIn {
    readyState = 0;
    onopen: ((event: unknown) => void) | null = null;
    onmessage: ((event: { data: unknown }) => void) | null = null;
    onclose: ((event: { code: number; reason: string }) => void) | null = null;
    onerror: ((event: unknown) => void) | null = null;
    constructor() {
      queueMicrotask(() => {
        this.readyState = OPEN;
        this.onopen?.({});
        this.receive({ event: 'geo.welcome', data: { connection_id: 'c1', region: 'eu', sender: 'bench' } });
      });
    }
    receive(frame: unknown): void {
      this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
    }
    send(data: string): void {
      onSend(this, JSON.parse(data) as ClientFrame);
    }
    close(): void {
      this.readyState = 3;
    }
  };
}

interface StandIn {
  receive(frame: unknown): void;
}

const frameOf = (room: string, seq: number, eventId: string): string =>
  JSON.stringify({
    event: 'chat.message',
    data: {
      event_id: eventId,
      room_id: room,
      type: 'chat.message',
      sender: 'someone',
      timestamp: '2026-11-29T10:00:00.000Z',
      region: 'eu',
      seq,
      data: { text: 'a message of a usual size, about sixty characters long....' },
    },
  });

async function client(sdk: typeof Sdk, onSend: (socket: StandIn, frame: ClientFrame) => void): Promise<Sdk.GeoClient> {
  return sdk.GeoClient.connect({
    regions: [{ name: 'eu', url: 'http://127.0.0.1:1' }],
    probe: () => Promise.resolve(1),
    heartbeatMs: 3_600_000,
    WebSocket: standIn(onSend),
  });
}

/** Answers every join as a server on a gap-free transport would. */
const answerJoins = (socket: StandIn, frame: ClientFrame): void => {
  if (frame.event === 'geo.join')
    socket.receive({ event: 'geo.joined', data: { room: frame.data.room, seq: 0, epoch: 'e1', recovered: true, contiguous: true } });
};

async function perEvent(sdk: typeof Sdk, events: number): Promise<number> {
  let socket: StandIn | undefined;
  const geo = await client(sdk, (s, frame) => ((socket = s), answerJoins(s, frame)));
  let delivered = 0;
  await geo.join('lobby', () => delivered++);
  const frames = Array.from({ length: events }, (_, i) => frameOf('lobby', i + 1, randomUUID()));
  // Warm up on the first tenth, time the rest.
  const warm = Math.floor(events / 10);
  for (let i = 0; i < warm; i++) socket!.receive(frames[i]);
  const start = process.hrtime.bigint();
  for (let i = warm; i < events; i++) socket!.receive(frames[i]);
  const micros = Number(process.hrtime.bigint() - start) / 1000 / (events - warm);
  if (delivered !== events) throw new Error(`delivered ${delivered} of ${events}`);
  geo.close();
  return micros;
}

async function perRoom(sdk: typeof Sdk, rooms: number): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  let socket: StandIn | undefined;
  const geo = await client(sdk, (s, frame) => ((socket = s), answerJoins(s, frame)));
  const names = Array.from({ length: rooms }, (_, i) => `room-${i}`);
  gc();
  const before = process.memoryUsage().heapUsed;
  for (const name of names) {
    await geo.join(name, () => undefined);
    for (let seq = 1; seq <= 300; seq++) socket!.receive(frameOf(name, seq, randomUUID()));
  }
  gc();
  const bytes = (process.memoryUsage().heapUsed - before) / rooms;
  geo.close();
  return bytes;
}

const positive = (value: string): number => {
  const number = Number(value);
  if (!Number.isInteger(number) || number <= 0) throw new InvalidArgumentError('a positive integer');
  return number;
};

const options = new Command()
  .option('--events <n>', 'events delivered to one room for the per-event figure', positive, 300_000)
  .option('--rooms <n>', 'rooms joined (300 events each) for the per-room figure', positive, 1000)
  .option('--sdk <path>', "another @geo-ws/client build's index.js to measure instead")
  .parse()
  .opts<{ events: number; rooms: number; sdk?: string }>();

const sdk = (await import(options.sdk ? pathToFileURL(options.sdk).href : '@geo-ws/client')) as typeof Sdk;
const micros = await perEvent(sdk, options.events);
const bytes = await perRoom(sdk, options.rooms);
console.log(`SDK ${options.sdk ?? '@geo-ws/client'}`);
console.log(`  delivery: ${micros.toFixed(2)} µs per event (${options.events} events, one room)`);
console.log(`  memory:   ${Math.round(bytes)} bytes per joined room after 300 events (${options.rooms} rooms)`);
