import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { globalLog, natsTransport } from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';
import { dropNatsNamespace, testNamespace } from './support/nats-namespace.js';
import { deployRegions, type Deployment } from './support/regions.js';
import { LinkProxy as TcpProxy } from '../apps/lab/src/topology/link-proxy.js';
import { WsTestClient } from './support/ws-test-client.js';

const servers = process.env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222';
const namespace = testNamespace('faults');

/**
 * The eu region reaches NATS through a TCP link the test cuts and restores; us is
 * connected directly. Events keep flowing from us while eu is cut off.
 */
describe('NATS connection lost and restored', () => {
  let link: TcpProxy;
  let deployment: Deployment;

  beforeAll(async () => {
    const [host, port] = servers.replace('nats://', '').split(':');
    link = await new TcpProxy({ host, port: Number(port) }).start();
    deployment = await deployRegions(['eu', 'us'], {
      transport: (region) => natsTransport({ servers: region === 'eu' ? link.url : servers, namespace, requestTimeoutMs: 2000 }),
      geo: { limits: { rate: { perSecond: 1000, burst: 1000 } } },
    });
  });

  afterAll(async () => {
    await deployment?.close();
    await link?.stop();
    await dropNatsNamespace(servers, namespace);
  });

  it('live tails resume from the last delivered seq, outage publishes fail fast as UNAVAILABLE, and their retries are stored once', async () => {
    const room = `outage-${randomUUID().slice(0, 6)}`;
    const eu = deployment.region('eu');
    const listener = await WsTestClient.connect(eu.wsUrl, { name: 'eu-listener' });
    const writer = await WsTestClient.connect(eu.wsUrl, { name: 'eu-writer' });
    const speaker = await WsTestClient.connect(deployment.region('us').wsUrl, { name: 'us-speaker' });
    for (const client of [listener, writer, speaker]) await client.join(room);

    const total = 60;
    let sent = 0;
    const speaking = (async () => {
      for (; sent < total; sent++) {
        const ack = await speaker.publish('note.add', room, { text: `us-${sent}` });
        expect(ack.seq).toEqual(expect.any(Number));
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();

    await waitFor(() => listener.events(room).length >= 10, 'the first events in eu');
    link.cut();
    await waitFor(() => !eu.transport.isReady(), 'eu to notice the lost connection');
    const ready = await fetch(`${eu.url}/readyz`);
    expect(ready.status).toBe(503);

    const eventId = randomUUID();
    const started = Date.now();
    const during = await writer.publish('note.add', room, { text: 'written during the outage' }, eventId);
    const failedAfterMs = Date.now() - started;
    expect(during).toMatchObject({ code: 'UNAVAILABLE', event_id: eventId });
    expect(failedAfterMs).toBeLessThan(1000); // fails fast, not after a request timeout

    await new Promise((resolve) => setTimeout(resolve, 800)); // us keeps publishing meanwhile
    link.restore();
    await waitFor(() => eu.transport.isReady(), 'eu to reconnect', 15_000);
    const retried = await writer.publish('note.add', room, { text: 'written during the outage' }, eventId);
    expect(retried.seq).toEqual(expect.any(Number));
    const again = await writer.publish('note.add', room, { text: 'written during the outage' }, eventId);
    expect(again).toMatchObject({ seq: retried.seq, duplicate: true });

    await speaking;
    const expected = total + 1;
    await listener.waitForEvents(room, expected, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const log = await deployment.region('us').transport.read(globalLog(room), 0, 1000);
    expect(log.events).toHaveLength(expected);
    expect(log.events.filter((event) => event.event_id === eventId)).toHaveLength(1);
    expect(listener.events(room)).toEqual(log.events); // nothing lost, nothing repeated, same order
    for (const client of [listener, writer, speaker]) client.close();
  }, 60_000);
});
