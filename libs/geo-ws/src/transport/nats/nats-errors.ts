import type { JetStreamApiError } from '@nats-io/jetstream';
import { GeoConfigError } from '../../errors/geo-config.error.js';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import type { NatsModules } from './load-nats.js';

/**
 * JetStream API error codes (nats-server's `errors.json`) that mean "not now": a leader
 * election, a peer or a Raft quorum missing, an overloaded server, or the same
 * `Nats-Msg-Id` being stored at this moment. `JetStreamApiCodes` of `@nats-io/jetstream`
 * names only a few codes, so these are named here with the server's names.
 */
const TRANSIENT_API_CODES: ReadonlyMap<number, string> = new Map([
  [10004, 'JSClusterIncompleteErr'],
  [10005, 'JSClusterNoPeersErr'],
  [10008, 'JSClusterNotAvailErr'],
  [10009, 'JSClusterNotLeaderErr'],
  [10041, 'JSRaftGeneralErr'],
  [10118, 'JSStreamOfflineErr'],
  [10119, 'JSConsumerOfflineErr'],
  [10158, 'JSStreamDuplicateMessageConflict'],
  [10167, 'JSStreamTooManyRequests'],
  [10194, 'JSStreamOfflineReasonErr'],
  [10195, 'JSConsumerOfflineReasonErr'],
  [10202, 'JSClusterServerMemberChangeInflightErr'],
]);

/** JetStream's "stream name already in use" (absent from `JetStreamApiCodes`). */
export const STREAM_NAME_IN_USE = 10058;
/** JetStream's "replicas > 1 not supported in non-clustered mode". */
const REPLICAS_NOT_SUPPORTED = 10074;
/** JetStream's "no suitable peers for placement". */
const NO_PEERS = 10005;
/** JetStream's "subjects overlap with an existing stream". */
const SUBJECT_OVERLAP = 10065;

/** Whether `error` is a JetStream API refusal with this error code. */
export function isApiError(nats: NatsModules, error: unknown, code: number): boolean {
  return error instanceof nats.jetstream.JetStreamApiError && error.code === code;
}

/**
 * Whether a JetStream API refusal goes away by itself: the codes above, any refusal
 * with status 503, and a stream or consumer not found while running (a leader that is
 * still recovering answers so; a stream lost with its server's store is back when an
 * app sets it up again).
 */
export function isTransientApiError(nats: NatsModules, error: JetStreamApiError): boolean {
  const { StreamNotFound, ConsumerNotFound } = nats.jetstream.JetStreamApiCodes;
  return error.status === 503 || TRANSIENT_API_CODES.has(error.code) || error.code === StreamNotFound || error.code === ConsumerNotFound;
}

/**
 * The error a failed NATS operation rejects with. Anything about reaching JetStream
 * (timeouts, no responders, a closed or reconnecting connection, a leader election) is
 * `GeoTransportUnavailableError`: clients get `UNAVAILABLE` and retry. A JetStream API
 * refusal that retrying cannot fix stays itself (a bug or a broker limit: `INTERNAL`,
 * logged by the server).
 */
export function unavailable(nats: NatsModules | undefined, error: unknown): Error {
  if (error instanceof GeoTransportUnavailableError) return error;
  if (nats && error instanceof nats.jetstream.JetStreamApiError && !isTransientApiError(nats, error)) return error;
  return new GeoTransportUnavailableError(`NATS: ${messageOf(error)}`, { cause: error });
}

/**
 * The error a failed set-up step (stream, KV bucket, JetStream context) fails the boot
 * with: `GeoTransportUnavailableError` when JetStream cannot be reached or is busy (the
 * boot may be retried as is), else `GeoConfigError` naming what to change.
 */
export function setUpError(nats: NatsModules, what: string, error: unknown): Error {
  const detail = `cannot set up ${what}: ${messageOf(error)}`;
  if (error instanceof GeoConfigError) return error;
  // The client throws `JetStreamNotEnabled` (not exported: known by its name) for an
  // account without JetStream, a refusal, and for no responders: a server without
  // JetStream, or one not ready yet.
  if (error instanceof Error && error.name === 'JetStreamNotEnabled') {
    if (error.cause instanceof nats.jetstream.JetStreamApiError)
      return new GeoConfigError(`natsTransport: ${detail}; enable JetStream for the account the app connects with`);
    return new GeoTransportUnavailableError(`${detail} (JetStream does not answer: is it enabled on the servers, e.g. nats-server -js?)`, {
      cause: error,
    });
  }
  if (!(error instanceof nats.jetstream.JetStreamApiError)) return new GeoTransportUnavailableError(detail, { cause: error });
  if (error.code === NO_PEERS) {
    return new GeoTransportUnavailableError(
      `${detail} (a cluster still forming, a server down, or more replicas or another cluster than the servers have: check the replicas, homeCluster and regionalCluster options)`,
      {
        cause: error,
      },
    );
  }
  if (isTransientApiError(nats, error)) return new GeoTransportUnavailableError(detail, { cause: error });
  return new GeoConfigError(`natsTransport: ${detail}; ${fixOf(error.code)}`);
}

/** What to change for a set-up refusal. */
function fixOf(code: number): string {
  switch (code) {
    case REPLICAS_NOT_SUPPORTED:
      return 'replicas > 1 needs a JetStream cluster: set replicas to 1 or cluster the servers';
    case SUBJECT_OVERLAP:
      return 'another stream captures these subjects: give this deployment its own namespace';
    default:
      return "check the servers' JetStream limits and the transport's replicas, storage, namespace, homeCluster and regionalCluster options, and the module's retention and dedupWindowMs";
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
