import { Logger } from '@nestjs/common';
import { Server, type CustomTransportStrategy } from '@nestjs/microservices';
import type { ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { isObservable, lastValueFrom } from 'rxjs';
import type { GeoLoggedEnvelope } from '../envelope/geo-envelope.interface.js';
import { loadNats } from '../transport/nats/load-nats.js';
import { NatsNames } from '../transport/nats/nats-names.js';
import { ALIAS_HEADER, positionOf, SEAL_HEADER, termOfSubject } from '../transport/nats/nats-segments.js';
import { GeoEventContext } from './geo-event.context.js';

/** How often a server of a namespace with room homes looks for home streams made since it started. */
const HOME_STREAMS_RESCAN_MS = 10_000;

/** Options of {@link GeoEventsServer}. */
export interface GeoEventsServerOptions {
  servers: string | string[];
  /** The namespace of the geo-ws apps (their `natsTransport({ namespace })`). Default `geo`. */
  namespace?: string;
  /** Durable consumer name: the service's position in the log survives restarts. */
  durable: string;
  /** Where a new durable starts: every retained event (default) or only new ones. */
  deliver?: 'all' | 'new';
  /** How long a handler may take before its event is redelivered. Default 30000. */
  ackWaitMs?: number;
  /** Deliveries before an event is given up on (logged). Default 10. */
  maxDeliver?: number;
  /** Delay before an event whose handler threw is redelivered. Default 1000. */
  retryDelayMs?: number;
  /** Extra options for `connect()` of `@nats-io/transport-node`. */
  connection?: Record<string, unknown>;
}

/**
 * A Nest microservice transport over the geo event log: `@EventPattern('<event type>')`
 * handlers receive every global room event (the envelope) in log order through a durable
 * JetStream consumer (one per home region's stream when the apps home rooms by region,
 * `roomHomes`: each room's events still come in its order). An event is acked when its handler returns; a handler that throws
 * gets it again after `retryDelayMs`. Delivery is at-least-once: use `event_id` to make
 * side effects idempotent.
 *
 * @example
 * const app = await NestFactory.createMicroservice(HistoryModule, {
 *   strategy: new GeoEventsServer({ servers: 'nats://127.0.0.1:4222', namespace: 'chat', durable: 'history' }),
 * });
 */
export class GeoEventsServer extends Server implements CustomTransportStrategy {
  protected override readonly logger = new Logger(GeoEventsServer.name);
  private nc: NatsConnection | undefined;
  /** What is consumed, per stream: the global stream, or each region's home stream (room homes). */
  private readonly consuming = new Map<string, ConsumerMessages>();
  /** Room homes: looks for home streams made since (a region that booted later). */
  private rescan: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private closed = false;
  private readonly names: NatsNames;

  constructor(private readonly options: GeoEventsServerOptions) {
    super();
    this.names = new NatsNames(options.namespace ?? 'geo');
  }

  async listen(callback: (error?: unknown) => void): Promise<void> {
    try {
      await this.start();
      callback();
    } catch (error) {
      callback(error);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.rescan);
    await Promise.all([...this.consuming.values()].map((messages) => messages.close().catch(() => undefined)));
    this.consuming.clear();
    await this.nc?.drain().catch(() => undefined);
    this.nc = undefined;
  }

  on(): never {
    throw new Error('GeoEventsServer does not emit server events');
  }

  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- Server's signature
  unwrap<T>(): T {
    if (!this.nc) throw new Error('GeoEventsServer is not listening yet');
    return this.nc as T;
  }

  private async start(): Promise<void> {
    const nats = await loadNats();
    this.nc = await nats.core.connect({
      servers: this.options.servers,
      name: `geo-ws events ${this.options.durable}`,
      ...this.options.connection,
    });
    const jsm = await nats.jetstream.jetstreamManager(this.nc);
    // The namespace's layout, as its apps made it: with room homes (the homes bucket
    // exists), each room's events are in its home region's stream, so every home stream
    // is consumed (a room's order is its stream's); without, the global stream.
    const homed = await jsm.streams.info(`KV_${this.names.kv.homes}`).then(
      () => true,
      () => false,
    );
    if (!homed) return this.consume(this.names.globalStream, this.names.globalSubjects());
    await this.consumeHomeStreams();
    this.rescan = setInterval(() => {
      // One look at a time: two could both start consuming a new stream, and two readers
      // of one durable would handle a room's events out of order.
      this.scanning ??= this.consumeHomeStreams()
        .catch((error: unknown) => this.logger.warn(`looking for new home streams failed: ${(error as Error).message}`))
        .finally(() => (this.scanning = undefined));
    }, HOME_STREAMS_RESCAN_MS).unref();
  }

  /** Consumes every region's home stream not consumed yet. */
  private async consumeHomeStreams(): Promise<void> {
    const nats = await loadNats();
    const jsm = await nats.jetstream.jetstreamManager(this.nc!);
    const prefix = this.names.homeStream('');
    for await (const stream of jsm.streams.names()) {
      if (!stream.startsWith(prefix) || this.consuming.has(stream) || this.closed) continue;
      const info = await jsm.streams.info(stream);
      await this.consume(stream, info.config.subjects[0]);
    }
  }

  private async consume(stream: string, subjects: string): Promise<void> {
    const nats = await loadNats();
    const jsm = await nats.jetstream.jetstreamManager(this.nc!);
    const js = nats.jetstream.jetstream(this.nc!);
    await jsm.consumers
      .add(stream, {
        durable_name: this.options.durable,
        ack_policy: nats.jetstream.AckPolicy.Explicit,
        deliver_policy: this.options.deliver === 'new' ? nats.jetstream.DeliverPolicy.New : nats.jetstream.DeliverPolicy.All,
        filter_subject: subjects,
        ack_wait: (this.options.ackWaitMs ?? 30_000) * 1_000_000,
        max_deliver: this.options.maxDeliver ?? 10,
      })
      .catch((error: unknown) => {
        throw new Error(`cannot create the durable consumer "${this.options.durable}" on ${stream}: ${(error as Error).message}`, {
          cause: error,
        });
      });
    const consumer = await js.consumers.get(stream, this.options.durable);
    const messages = await consumer.consume({ max_messages: 64 });
    this.consuming.set(stream, messages);
    void this.run(messages);
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    for await (const message of messages) await this.handle(message);
  }

  private async handle(message: JsMsg): Promise<void> {
    // Markers a move leaves in a home stream (a segment's seal, aliases of its event ids) are not events.
    if (message.headers?.has(SEAL_HEADER) || message.headers?.has(ALIAS_HEADER)) {
      message.ack();
      return;
    }
    let envelope: GeoLoggedEnvelope;
    try {
      // The event's seq is its stream sequence, in its segment's range for a room that moved (see the NATS transport).
      envelope = { ...message.json<GeoLoggedEnvelope>(), seq: positionOf(termOfSubject(message.subject), message.seq) };
    } catch {
      this.logger.warn(`skipping a message on ${message.subject} that is not an envelope`);
      message.term();
      return;
    }
    const handler = this.getHandlerByPattern(envelope.type);
    if (!handler) {
      message.ack(); // no handler for this type: nothing to do, never redeliver
      return;
    }
    try {
      const result: unknown = await handler(envelope, new GeoEventContext([envelope, message]));
      if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
      message.ack();
    } catch (error) {
      const deliveries = message.info.deliveryCount;
      this.logger.warn(`handler of ${envelope.type} failed for ${envelope.event_id} (delivery ${deliveries}): ${(error as Error).message}`);
      message.nak(this.options.retryDelayMs ?? 1000);
    }
  }
}
