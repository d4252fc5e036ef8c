import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { lastValueFrom } from 'rxjs';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { randomUUID } from 'node:crypto';
import { globalLog, natsTransport, type GeoLoggedEnvelope, type GeoTransport } from '@geo-ws/nest';
import { GeoEventContext, GeoEventsClient, GeoEventsServer } from '@geo-ws/nest/microservices';
import { waitFor } from '@geo-ws/nest/testing';
import { dropNatsNamespace } from './support/nats-namespace.js';

const servers = process.env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222';
const namespace = `ms${randomUUID().slice(0, 6)}`;

/** What the worker saw: every delivery, and the events it accepted. */
const deliveries: { event_id: string; type: string; count: number }[] = [];
const persisted: GeoLoggedEnvelope[] = [];
let flakyFailures = 0;

@Controller()
class HistoryWorker {
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-arguments -- <string> picks the untyped overload, so @Ctx() can be typed (TS1241 without)
  @EventPattern<string>('chat.message')
  persist(@Payload() envelope: GeoLoggedEnvelope, @Ctx() context: GeoEventContext) {
    deliveries.push({ event_id: envelope.event_id, type: envelope.type, count: context.getDeliveryCount() });
    persisted.push(envelope);
  }

  /** Fails on the first delivery of each event: the event must come back. */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-arguments -- as above
  @EventPattern<string>('chat.flaky')
  flaky(@Payload() envelope: GeoLoggedEnvelope, @Ctx() context: GeoEventContext) {
    deliveries.push({ event_id: envelope.event_id, type: envelope.type, count: context.getDeliveryCount() });
    if (context.getDeliveryCount() === 1) {
      flakyFailures++;
      throw new Error('disk full (first delivery only)');
    }
  }
}

@Module({ controllers: [HistoryWorker] })
class WorkerModule {}

describe('@nestjs/microservices over the geo event log (JetStream)', () => {
  let transport: GeoTransport;
  let worker: INestMicroservice;
  let client: GeoEventsClient;
  const room = `history-${randomUUID().slice(0, 6)}`;

  beforeAll(async () => {
    // A geo-ws app's transport creates the streams, as a region would.
    transport = await natsTransport({ servers, namespace })({
      region: 'eu',
      regions: ['eu', 'us'],
      dedupWindowMs: 120_000,
      retention: { maxEvents: 1000, maxAgeMs: 3_600_000 },
    });
    await transport.connect();
    worker = await NestFactory.createMicroservice(WorkerModule, {
      strategy: new GeoEventsServer({ servers, namespace, durable: 'history', retryDelayMs: 200 }),
      logger: false,
    });
    await worker.listen();
    client = new GeoEventsClient({ servers, namespace, region: 'us', sender: 'importer' });
  });

  afterAll(async () => {
    await worker?.close();
    await client?.close();
    await transport?.close();
    const nc = await connect({ servers });
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names())
      if (name.includes(namespace.toUpperCase()) || name.includes(`_${namespace}_`)) await jsm.streams.delete(name);
    await nc.close();
  });

  it('the worker receives every chat event once, in log order, and acks it', async () => {
    const appended = [];
    for (let n = 0; n < 20; n++) {
      appended.push(
        await transport.append(globalLog(room), {
          event_id: randomUUID(),
          room_id: room,
          type: 'chat.message',
          sender: 'alice',
          timestamp: new Date().toISOString(),
          region: 'eu',
          data: { n },
        }),
      );
    }
    await waitFor(() => persisted.filter((event) => event.room_id === room).length >= 20, '20 persisted events', 10_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const mine = persisted.filter((event) => event.room_id === room);
    expect(mine.map((event) => event.seq)).toEqual(appended.map((result) => result.seq));
    expect(new Set(mine.map((event) => event.event_id)).size).toBe(20);
    const nc = await connect({ servers });
    const info = await (await jetstreamManager(nc)).consumers.info(`GEOWS_${namespace.toUpperCase()}`, 'history');
    await nc.close();
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_pending).toBe(0);
  });

  it('a handler that throws sees the event again, and it is acked after it succeeds', async () => {
    const result = await lastValueFrom(client.emit<{ seq: number }>('chat.flaky', { room_id: room, data: { n: 'flaky' } }));
    expect(result.seq).toBe(21);
    await waitFor(() => deliveries.some((delivery) => delivery.type === 'chat.flaky' && delivery.count === 2), 'the redelivery', 10_000);
    expect(flakyFailures).toBe(1);
    expect(deliveries.filter((delivery) => delivery.type === 'chat.flaky').map((delivery) => delivery.count)).toEqual([1, 2]);
  });

  it('GeoEventsClient.emit appends like a client publish: gap-free seq, stamped envelope, idempotent by event_id', async () => {
    const eventId = randomUUID();
    const first = await lastValueFrom(
      client.emit<{ seq: number; duplicate: boolean }>('chat.message', { room_id: room, data: { text: 'imported' }, event_id: eventId }),
    );
    const again = await lastValueFrom(
      client.emit<{ seq: number; duplicate: boolean }>('chat.message', { room_id: room, data: { text: 'imported' }, event_id: eventId }),
    );
    expect(again).toMatchObject({ seq: first.seq, duplicate: true });
    const { events } = await transport.read(globalLog(room), first.seq - 1, 10);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      event_id: eventId,
      type: 'chat.message',
      sender: 'importer',
      region: 'us',
      seq: first.seq,
      data: { text: 'imported' },
    });
    await waitFor(() => persisted.some((event) => event.event_id === eventId), 'the worker to see the imported event');
  });
});

describe('@nestjs/microservices over a namespace with room homes (a stream per home region)', () => {
  const homedNamespace = `mh${randomUUID().slice(0, 6)}`;
  const transports: GeoTransport[] = [];
  let worker: INestMicroservice | undefined;
  let client: GeoEventsClient | undefined;

  afterAll(async () => {
    await worker?.close();
    await client?.close();
    await Promise.all(transports.map((transport) => transport.close()));
    await dropNatsNamespace(servers, homedNamespace);
  });

  it('the worker consumes every home stream, including one made after it started; each room in its order', async () => {
    const regionTransport = async (region: string) => {
      const transport = await natsTransport({ servers, namespace: homedNamespace, roomHomes: true })({
        region,
        regions: ['eu', 'us'],
        dedupWindowMs: 120_000,
        retention: { maxEvents: 1000, maxAgeMs: 3_600_000 },
      });
      await transport.connect();
      transports.push(transport);
      return transport;
    };
    const eu = await regionTransport('eu');
    worker = await NestFactory.createMicroservice(WorkerModule, {
      strategy: new GeoEventsServer({ servers, namespace: homedNamespace, durable: 'history', retryDelayMs: 200 }),
      logger: false,
    });
    await worker.listen();
    const us = await regionTransport('us'); // its home stream is made after the worker started
    const rooms = { eu: `homed-eu-${randomUUID().slice(0, 6)}`, us: `homed-us-${randomUUID().slice(0, 6)}` };
    const appended: Record<string, number[]> = { [rooms.eu]: [], [rooms.us]: [] };
    for (let n = 0; n < 10; n++) {
      for (const [region, transport] of [
        ['eu', eu],
        ['us', us],
      ] as const) {
        const room = rooms[region];
        const draft = {
          event_id: randomUUID(),
          room_id: room,
          type: 'chat.message',
          sender: 'alice',
          timestamp: new Date().toISOString(),
          region,
          data: { n },
        };
        appended[room].push((await transport.append(globalLog(room), draft)).seq);
      }
    }
    expect((await eu.home(rooms.us)).region).toBe('us');
    // The worker finds us's home stream on its next look (every 10 s).
    await waitFor(() => persisted.filter((event) => event.room_id === rooms.us).length >= 10, 'the us room at the worker', 20_000);
    for (const room of Object.values(rooms)) {
      expect(persisted.filter((event) => event.room_id === room).map((event) => event.seq)).toEqual(appended[room]);
    }
    // A side service that appends follows the apps' layout; the other setting is refused.
    client = new GeoEventsClient({ servers, namespace: homedNamespace, region: 'us', sender: 'importer', roomHomes: true });
    const result = await lastValueFrom(client.emit<{ seq: number }>('chat.message', { room_id: rooms.us, data: { text: 'imported' } }));
    expect(result.seq).toBeGreaterThan(appended[rooms.us].at(-1)!);
  }, 60_000);
});
