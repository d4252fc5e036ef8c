import { describe, expect, it } from '@jest/globals';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { ClosedConnectionError, TimeoutError } from '@nats-io/transport-node';
import { GeoConfigError } from '../../errors/geo-config.error.js';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import { loadNats } from './load-nats.js';
import { NatsNames } from './nats-names.js';
import { setUpError, unavailable } from './nats-errors.js';
import { natsTransport } from './nats.transport.js';

const nats = await loadNats();
const apiError = (err_code: number, code = 400, description = `err ${err_code}`) => new JetStreamApiError({ code, err_code, description });

describe('NATS errors: what reaches clients as UNAVAILABLE (retryable) and what stays an error', () => {
  it.each([
    ['a request timeout', new TimeoutError()],
    ['a closed connection', new ClosedConnectionError()],
    ['"JetStream system temporarily unavailable" (10008)', apiError(10008, 503)],
    ['"JetStream cluster can not handle request" during a leader election (10009)', apiError(10009, 500)],
    ['"no suitable peers for placement" (10005)', apiError(10005)],
    ['"stream is offline" (10118)', apiError(10118, 500)],
    ['"duplicate message id is in process" (10158)', apiError(10158)],
    ['a stream not found while running (JetStreamApiCodes.StreamNotFound)', apiError(JetStreamApiCodes.StreamNotFound, 404)],
    ['a consumer not found (JetStreamApiCodes.ConsumerNotFound)', apiError(JetStreamApiCodes.ConsumerNotFound, 404)],
    ['any refusal with status 503', apiError(10999, 503)],
  ])('%s is unavailable', (_, error) => {
    const mapped = unavailable(nats, error);
    expect(mapped).toBeInstanceOf(GeoTransportUnavailableError);
    expect(mapped.cause).toBe(error);
  });

  it('a refusal that retrying cannot fix stays itself (INTERNAL, logged)', () => {
    for (const error of [apiError(10003), apiError(10054)]) expect(unavailable(nats, error)).toBe(error);
  });

  it('an unavailable error passes through unchanged', () => {
    const error = new GeoTransportUnavailableError('down');
    expect(unavailable(nats, error)).toBe(error);
  });

  it('set-up: unreachable or busy JetStream is unavailable; a refused configuration is a GeoConfigError that names the fix', () => {
    expect(setUpError(nats, 'JetStream stream S', new TimeoutError())).toBeInstanceOf(GeoTransportUnavailableError);
    expect(setUpError(nats, 'JetStream stream S', apiError(10009, 500))).toBeInstanceOf(GeoTransportUnavailableError);
    const noPeers = setUpError(nats, 'JetStream stream S', apiError(10005));
    expect(noPeers).toBeInstanceOf(GeoTransportUnavailableError);
    expect(noPeers.message).toMatch(/replicas, homeCluster and regionalCluster/);
    const replicas = setUpError(nats, 'JetStream stream S', apiError(10074, 500, 'replicas > 1 not supported in non-clustered mode'));
    expect(replicas).toBeInstanceOf(GeoConfigError);
    expect(replicas.message).toMatch(/set replicas to 1/);
    expect(setUpError(nats, 'JetStream stream S', apiError(10065))).toBeInstanceOf(GeoConfigError);
  });

  it('set-up: JetStream not answering is unavailable, JetStream disabled for the account is a configuration error', () => {
    const notAnswering = Object.assign(new Error('jetstream is not enabled'), { name: 'JetStreamNotEnabled' });
    expect(setUpError(nats, 'the JetStream context', notAnswering).message).toMatch(/nats-server -js/);
    expect(setUpError(nats, 'the JetStream context', notAnswering)).toBeInstanceOf(GeoTransportUnavailableError);
    const disabled = Object.assign(
      new Error('jetstream not enabled for account', { cause: apiError(JetStreamApiCodes.JetStreamNotEnabledForAccount, 503) }),
      {
        name: 'JetStreamNotEnabled',
      },
    );
    expect(setUpError(nats, 'the JetStream context', disabled)).toBeInstanceOf(GeoConfigError);
  });

  it('options it cannot work with are GeoConfigErrors at once', () => {
    expect(() => new NatsNames('Not Valid')).toThrow(GeoConfigError);
    const context = { region: 'eu', regions: ['eu'], dedupWindowMs: 120_000, retention: { maxEvents: 100, maxAgeMs: 3_600_000 } };
    expect(() => natsTransport({ servers: 'nats://127.0.0.1:4222', namespace: 'UPPER' })(context)).toThrow(/namespace must be/);
    expect(() => natsTransport({ servers: 'nats://127.0.0.1:4222', sharedTailFrom: 0 })(context)).toThrow(GeoConfigError);
    for (const tailGiveUpMs of [4999, Number.NaN]) {
      expect(() => natsTransport({ servers: 'nats://127.0.0.1:4222', tailGiveUpMs })(context)).toThrow(
        /tailGiveUpMs must be at least 5000/,
      );
    }
    for (const takeoverAfterMs of [1999, 0, Number.NaN]) {
      expect(() => natsTransport({ servers: 'nats://127.0.0.1:4222', roomHomes: true, takeoverAfterMs })(context)).toThrow(
        /takeoverAfterMs must be at least 2000 \(or Infinity\)/,
      );
    }
    expect(() => natsTransport({ servers: 'nats://127.0.0.1:4222', roomHomes: true, takeoverAfterMs: Infinity })(context)).not.toThrow();
  });
});
