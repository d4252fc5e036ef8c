import { DEFAULT_RETENTION, MIN_DEDUP_WINDOW_MS } from '../options/defaults.js';
import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import { randomUUID } from 'node:crypto';
import { assertEnvelope, utcTimestamp } from '../envelope/envelope.rules.js';
import type { GeoEnvelopeDraft } from '../envelope/geo-envelope.interface.js';
import type { GeoAppendResult } from '../transport/geo-transport.interface.js';
import { globalLog } from '../transport/log-ref.js';
import { NatsTransport } from '../transport/nats/nats.transport.js';
import type { GeoNatsTransportOptions } from '../transport/nats/nats-transport.options.js';

/** Options of {@link GeoEventsClient}. */
export interface GeoEventsClientOptions extends Pick<
  GeoNatsTransportOptions,
  'servers' | 'namespace' | 'connection' | 'requestTimeoutMs' | 'roomHomes'
> {
  /** The region this service runs in: stamped as the envelope's `region`. */
  region: string;
  /** Default `sender` of emitted events (a service identity). Default `service`. */
  sender?: string;
}

/** What `emit()` takes: the room, the payload and optionally the idempotency key and sender. */
export interface GeoEmitData<T = unknown> {
  room_id: string;
  data: T;
  /** Give one to make retries idempotent (G1); default a new UUID. */
  event_id?: string;
  sender?: string;
}

/**
 * A Nest `ClientProxy` that appends events to the geo event log, exactly as a client's
 * publish would: `client.emit('chat.message', { room_id, data })` resolves with
 * `{ seq, epoch, duplicate }` once stored. Members in every region receive it.
 * Request-response (`send`) is not supported: the log carries events.
 */
export class GeoEventsClient extends ClientProxy {
  private readonly transport: NatsTransport;

  constructor(private readonly options: GeoEventsClientOptions) {
    super();
    this.transport = new NatsTransport(
      { ...options, setup: 'verify' },
      { region: options.region, regions: [options.region], dedupWindowMs: MIN_DEDUP_WINDOW_MS, retention: DEFAULT_RETENTION },
    );
  }

  connect(): Promise<void> {
    return this.transport.connect();
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- ClientProxy's signature
  unwrap<T>(): T {
    return this.transport as T;
  }

  protected publish(_packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    callback({ err: new Error('GeoEventsClient carries events only: use emit(), not send()'), isDisposed: true });
    return () => undefined;
  }

  protected async dispatchEvent<T = GeoAppendResult>(packet: ReadPacket<GeoEmitData>): Promise<T> {
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- emit() from plain JavaScript may pass nothing
    const { room_id, data, event_id, sender } = packet.data ?? ({} as GeoEmitData);
    const draft: GeoEnvelopeDraft = {
      event_id: event_id ?? randomUUID(),
      room_id,
      type: String(packet.pattern),
      sender: sender ?? this.options.sender ?? 'service',
      timestamp: utcTimestamp(),
      region: this.options.region,
      data: data ?? null,
    };
    assertEnvelope({ ...draft, seq: null }, { logged: false });
    await this.connect();
    return (await this.transport.append(globalLog(room_id), draft)) as T;
  }
}
