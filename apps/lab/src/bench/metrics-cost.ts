/**
 * What metrics add on the hot path (docs/OPERATIONS.md, "What metrics cost"): the calls the
 * server makes with `metrics` on, each timed over many iterations on a registry of its own.
 *
 *   npm run build && node apps/lab/dist/bench/metrics-cost.js [--iterations 2000000]
 *
 * Printed: nanoseconds per call of each hook, next to the work the same event already
 * costs without metrics (building its frame once: JSON.stringify + UTF-8 encoding), and
 * the share per member of a room of 100 (a delivery is counted once per event per node).
 */
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { GeoMetrics } from '@geo-ws/nest';

const { values } = parseArgs({ options: { iterations: { type: 'string', default: '2000000' } } });
const iterations = Number(values.iterations);

const metrics = await GeoMetrics.create({ path: false, registry: new Registry(), prefix: 'geows_', reportMs: 30_000 }, 'eu', [
  'eu',
  'us',
  'asia',
]);
metrics.useEvents(['chat.message']);
const envelope = {
  event_id: '01J9Z8X7W6V5U4T3S2R1Q0P9O8',
  room_id: 'room-42',
  type: 'chat.message',
  sender: 'alice',
  timestamp: new Date().toISOString(),
  region: 'us',
  seq: 1234,
  data: { text: 'hello from the metrics bench, a chat line of ordinary length' },
};
const ack = JSON.stringify({ event: 'geo.ack', data: { event_id: envelope.event_id, seq: 1234 } });

function time(label: string, run: (i: number) => void): number {
  for (let i = 0; i < 100_000; i++) run(i); // warm-up
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) run(i);
  const ns = Number(process.hrtime.bigint() - started) / iterations;
  console.log(`${label.padEnd(58)} ${ns.toFixed(0).padStart(6)} ns`);
  return ns;
}

console.log(`metrics hooks, ${iterations.toLocaleString('en')} calls each (Node ${process.version})`);
const frame = time('baseline: one event frame (stringify + UTF-8), no metrics', () =>
  Buffer.from(JSON.stringify({ event: envelope.type, data: envelope })),
);
const delivered = time('delivered(): frames/bytes out + delivery lag, per event', () =>
  metrics.delivered(envelope, 100, 180, 'json', true),
);
time('frameReceived(): per inbound frame', () => metrics.frameReceived('chat.message', 'json'));
time('frameSent(): per control frame (with Buffer.byteLength)', () => metrics.frameSent('geo.ack', 'json', Buffer.byteLength(ack)));
time('appended(): append histogram, per publish', () => metrics.appended(0.0021, false));
console.log(
  `per event on a node: ${(delivered / frame).toFixed(2)}x the frame it already builds; ` +
    `per member of a room of 100: ${(delivered / 100).toFixed(1)} ns`,
);
