import { Logger } from '@nestjs/common';
import type { StreamConfig } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { GeoTransportContext } from '../geo-transport.interface.js';
import type { NatsClients } from './load-nats.js';
import { GeoConfigError } from '../../errors/geo-config.error.js';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import { isApiError, setUpError, STREAM_NAME_IN_USE } from './nats-errors.js';
import type { NatsNames } from './nats-names.js';
import type { NatsStateBuckets } from './nats-state.store.js';
import type { GeoNatsTransportOptions } from './nats-transport.options.js';

const DAY = 24 * 60 * 60 * 1000;

/** Every KV bucket of a namespace: the state store's and the log epochs'. */
export interface NatsBuckets extends NatsStateBuckets {
  epochs: KV;
  /** Room homes (`roomHomes` only). */
  homes: KV | undefined;
}

/**
 * The streams and KV buckets of a namespace: created, or brought to the configured
 * limits, at boot (idempotent; regions booting together are fine), or only checked with
 * `setup: 'verify'` (side services must not change the apps' settings).
 */
export class NatsStreams {
  private readonly logger = new Logger(NatsStreams.name);

  constructor(
    private readonly names: NatsNames,
    private readonly options: GeoNatsTransportOptions,
    private readonly context: GeoTransportContext,
    private readonly timeoutMs: number,
    /** Set-up stops retrying once the transport is closed. */
    private readonly closed: () => boolean,
  ) {}

  /**
   * The global stream and this region's regional stream. Fails with
   * `GeoTransportUnavailableError` when JetStream cannot be reached in time, with
   * `GeoConfigError` when it refuses the configuration.
   */
  async setUp(clients: NatsClients): Promise<void> {
    const { jsm, nats } = clients;
    await this.checkLayout(clients);
    if (this.options.setup === 'verify') {
      const stream = this.options.roomHomes ? `KV_${this.names.kv.homes}` : this.names.globalStream;
      await jsm.streams.info(stream).catch((error: unknown) => {
        if (isApiError(nats, error, nats.jetstream.JetStreamApiCodes.StreamNotFound)) {
          throw new GeoConfigError(
            `natsTransport: JetStream stream ${stream} does not exist (namespace "${this.names.namespace}"): start a geo-ws app with this namespace first, or set the namespace its apps use`,
          );
        }
        throw setUpError(nats, `JetStream stream ${stream}`, error);
      });
      return;
    }
    const { region } = this.context;
    // A cluster that is still forming answers "no suitable peers for placement" for a
    // few seconds: retry set-up for a while before failing the boot.
    await this.retrying(async () => {
      if (!this.options.roomHomes) {
        await this.ensureStream(clients, this.names.globalStream, this.names.globalSubjects(), this.options.homeCluster);
      }
      await this.ensureStream(clients, this.names.regionalStream(region), this.names.regionalSubjects(region), this.clusterOf(region));
      if (this.options.roomHomes) await this.ensureHomeStream(clients, region);
    });
  }

  /**
   * Refuses to run a namespace the other way its apps do: with and without `roomHomes`,
   * one room would have two logs, each with its own order. The homes bucket marks a
   * namespace with homes; events in the global stream mark one without.
   */
  private async checkLayout({ jsm, nats }: NatsClients): Promise<void> {
    const exists = (stream: string) =>
      jsm.streams.info(stream).catch((error: unknown) => {
        if (isApiError(nats, error, nats.jetstream.JetStreamApiCodes.StreamNotFound)) return undefined;
        throw setUpError(nats, `JetStream stream ${stream}`, error);
      });
    const namespace = JSON.stringify(this.names.namespace);
    if (this.options.roomHomes) {
      const global = await exists(this.names.globalStream);
      if (global && global.state.messages > 0) {
        throw new GeoConfigError(
          `natsTransport: namespace ${namespace} holds room logs written without roomHomes (stream ${this.names.globalStream}, ${global.state.messages} events): run every app of a namespace with the same roomHomes, or turn roomHomes on for a new namespace`,
        );
      }
    } else if (await exists(`KV_${this.names.kv.homes}`)) {
      throw new GeoConfigError(
        `natsTransport: namespace ${namespace} keeps its room logs in their home regions (bucket ${this.names.kv.homes}): set roomHomes: true, as its apps do`,
      );
    }
  }

  /**
   * The stream of the rooms homed in `region`, in that region's cluster. Each region makes
   * its own at boot; a region placing a room in another region's home makes it there if
   * that region has not booted yet.
   */
  async ensureHomeStream(clients: NatsClients, region: string): Promise<void> {
    if (this.options.setup === 'verify') return;
    await this.ensureStream(clients, this.names.homeStream(region), this.names.homeSubjects(region), this.clusterOf(region));
  }

  /**
   * Region `at`'s mirror of region `home`'s home stream, in `at`'s cluster, with the home
   * stream's limits (so retention decisions read the same on both). Mirrors keep the home
   * stream's sequences and headers, so a tail reads a mirror as it would the home stream.
   * Idempotent. Returns the incarnation of the home stream it mirrors: a mirror of an
   * earlier incarnation (the home stream was created again: a mirror copies nothing of the
   * new one until it passes the old one's last sequence, then the wrong events) is
   * deleted and made again. The incarnation is kept in the mirror's description (NATS 2.9
   * has no stream metadata).
   */
  async ensureMirror(clients: NatsClients, home: string, at: string): Promise<string> {
    const { jsm, nats } = clients;
    const name = this.names.mirrorStream(home, at);
    const origin = this.names.homeStream(home);
    try {
      await this.ensureHomeStream(clients, home);
      const incarnation = Date.parse((await jsm.streams.info(origin)).created).toString(36);
      const description = mirrorDescription(origin, incarnation);
      const cluster = this.clusterOf(at);
      const config: Partial<StreamConfig> & { name: string } = {
        name,
        description,
        mirror: { name: origin },
        max_msgs_per_subject: this.context.retention.maxEvents,
        max_age: this.context.retention.maxAgeMs * 1_000_000,
        num_replicas: this.options.replicas ?? 1,
        storage: this.options.storage ?? 'file',
        discard: 'old',
        ...(cluster ? { placement: { cluster, tags: [] } } : {}),
      };
      let info = await jsm.streams.info(name).catch((error: unknown) => {
        if (isApiError(nats, error, nats.jetstream.JetStreamApiCodes.StreamNotFound)) return undefined;
        throw error;
      });
      if (info && info.config.description !== description) {
        this.logger.warn(`mirror ${name} copies an earlier ${origin} (created again since): made again`);
        await jsm.streams.delete(name).catch(() => undefined);
        info = undefined;
      }
      if (!info) {
        await jsm.streams.add(config).catch((error: unknown) => {
          if (!isApiError(nats, error, STREAM_NAME_IN_USE)) throw error;
        });
      } else if (info.config.max_msgs_per_subject !== config.max_msgs_per_subject || info.config.max_age !== config.max_age) {
        await jsm.streams.update(name, { ...info.config, max_msgs_per_subject: config.max_msgs_per_subject, max_age: config.max_age });
      }
      return incarnation;
    } catch (error) {
      throw setUpError(nats, `JetStream mirror ${name}`, error);
    }
  }

  /** The incarnation of the home stream region `at`'s mirror of `home` copies, if the mirror exists (`setup: 'verify'` makes none). */
  async mirrored({ jsm }: NatsClients, home: string, at: string): Promise<string | undefined> {
    const info = await jsm.streams.info(this.names.mirrorStream(home, at)).catch(() => undefined);
    return info?.config.description?.match(/\(created ([0-9a-z]+)\)$/)?.[1];
  }

  /** Whether regions read live events from mirrors (see `mirrors` in the options). */
  get mirrors(): boolean {
    return (
      !!this.options.roomHomes &&
      (this.options.mirrors ?? (this.options.homeCluster !== undefined || this.options.regionalCluster !== undefined))
    );
  }

  /** The cluster holding a region's own streams (regional logs, room homes), on a supercluster. */
  private clusterOf(region: string): string | undefined {
    return this.options.regionalCluster?.(region) ?? (this.options.homeCluster ? region : undefined);
  }

  /** The KV buckets (sessions, revocations and presence with their age limits; log epochs). */
  async openBuckets({ js, nats }: NatsClients): Promise<NatsBuckets> {
    const kvm = new nats.kv.Kvm(js);
    const ttl = this.options.stateTtlMs ?? {};
    const common = {
      history: 1,
      replicas: this.options.replicas ?? 1,
      storage: this.options.storage ?? 'file',
      timeout: this.timeoutMs,
      ...(this.options.homeCluster ? { placement: { cluster: this.options.homeCluster, tags: [] } } : {}),
    };
    // Retried like the streams: a cluster still forming times out, and instances booting
    // together race to create a bucket (the loser's next attempt finds it and opens it).
    const open = (name: string, bucketTtl?: number) =>
      this.retrying(() =>
        (this.options.setup === 'verify'
          ? kvm.open(name, { timeout: this.timeoutMs })
          : kvm.create(name, { ...common, ...(bucketTtl ? { ttl: bucketTtl } : {}) })
        ).catch((error: unknown) => {
          if (isApiError(nats, error, STREAM_NAME_IN_USE)) {
            throw new GeoTransportUnavailableError(`NATS KV bucket ${name} was created by another instance at the same moment`, {
              cause: error,
            });
          }
          throw setUpError(nats, `NATS KV bucket ${name}`, error);
        }),
      );
    const [epochs, homes, sessions, revocations, presence] = await Promise.all([
      open(this.names.kv.epochs),
      this.options.roomHomes ? open(this.names.kv.homes) : undefined,
      open(this.names.kv.sessions, ttl.sessions ?? DAY),
      open(this.names.kv.revocations, ttl.revocations ?? 7 * DAY),
      open(this.names.kv.presence, ttl.presence ?? 5 * 60 * 1000),
    ]);
    return { epochs, homes, sessions, revocations, presence };
  }

  /** Retries what may go away by itself (unavailable); a refused configuration fails at once. */
  private async retrying<T>(setUp: () => Promise<T>, forMs = 20_000): Promise<T> {
    const deadline = Date.now() + forMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await setUp();
      } catch (error) {
        if (!(error instanceof GeoTransportUnavailableError) || Date.now() > deadline || this.closed()) throw error;
        this.logger.warn(`JetStream set-up failed, retrying: ${error instanceof Error ? error.message : String(error)}`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 200 * 2 ** attempt)));
      }
    }
  }

  /** Creates the stream, or brings an existing one to the configured limits. Idempotent. */
  private async ensureStream({ jsm, nats }: NatsClients, name: string, subjects: string, cluster: string | undefined): Promise<void> {
    const config: Partial<StreamConfig> & { name: string } = {
      name,
      subjects: [subjects],
      // Retention per room by count, and by age for the whole stream.
      max_msgs_per_subject: this.context.retention.maxEvents,
      max_age: this.context.retention.maxAgeMs * 1_000_000,
      duplicate_window: this.context.dedupWindowMs * 1_000_000,
      allow_direct: true,
      num_replicas: this.options.replicas ?? 1,
      storage: this.options.storage ?? 'file',
      discard: 'old',
      ...(cluster ? { placement: { cluster, tags: [] } } : {}),
    };
    try {
      const info = await jsm.streams.info(name).catch((error: unknown) => {
        if (isApiError(nats, error, nats.jetstream.JetStreamApiCodes.StreamNotFound)) return undefined;
        throw error;
      });
      if (!info) {
        await jsm.streams.add(config).catch((error: unknown) => {
          // Another region created it at the same moment.
          if (!isApiError(nats, error, STREAM_NAME_IN_USE)) throw error;
        });
        return;
      }
      const current = info.config;
      if (
        current.max_msgs_per_subject !== config.max_msgs_per_subject ||
        current.max_age !== config.max_age ||
        current.duplicate_window !== config.duplicate_window ||
        !current.subjects.includes(subjects)
      ) {
        await jsm.streams.update(name, { ...current, ...config, subjects: [...new Set([...current.subjects, subjects])] });
      }
    } catch (error) {
      throw setUpError(nats, `JetStream stream ${name}`, error);
    }
  }
}

/** What a mirror says of the home stream it copies: read back by `mirrored`. */
function mirrorDescription(origin: string, incarnation: string): string {
  return `geo-ws: a copy of ${origin} (created ${incarnation})`;
}
