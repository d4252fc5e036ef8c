import { describe, expect, it } from '@jest/globals';
import { GeoConfigError } from '../../errors/geo-config.error.js';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import { unavailable } from './redis-errors.js';
import { RedisKeys } from './redis-keys.js';
import { redisTransport } from './redis.transport.js';

describe('Redis errors: what reaches clients as UNAVAILABLE (retryable) and what stays an error', () => {
  it.each([
    'Connection is closed.',
    "Stream isn't writeable and enableOfflineQueue options is false",
    'connect ECONNREFUSED 127.0.0.1:6379',
    'LOADING Redis is loading the dataset in memory',
    'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no',
    "READONLY You can't write against a read only replica.",
    'TRYAGAIN Multiple keys request during rehashing of slot',
    'CLUSTERDOWN The cluster is down',
    'BUSY Redis is busy running a script.',
    'ERR max number of clients reached',
  ])('"%s" is unavailable', (message) => {
    const error = new Error(message);
    const mapped = unavailable(error);
    expect(mapped).toBeInstanceOf(GeoTransportUnavailableError);
    expect(mapped.cause).toBe(error);
  });

  it.each(['ERR unknown command', 'WRONGTYPE Operation against a key holding the wrong kind of value', 'NOSCRIPT No matching script'])(
    '"%s" is a bug and stays itself (INTERNAL, logged)',
    (message) => {
      const error = new Error(message);
      expect(unavailable(error)).toBe(error);
    },
  );

  it('options it cannot work with are GeoConfigErrors that name the fix', () => {
    const context = { region: 'eu', regions: ['eu'], dedupWindowMs: 120_000, retention: { maxEvents: 100, maxAgeMs: 3_600_000 } };
    expect(() => new RedisKeys('Not Valid')).toThrow(GeoConfigError);
    expect(() => redisTransport({})(context)).toThrow(/exactly one of primary .* and cluster/);
    expect(() => redisTransport({ cluster: { nodes: [] }, replica: 'redis://r:6379' })(context)).toThrow(GeoConfigError);
    expect(() => redisTransport({ primary: 'redis://p:6379', emptyLogTtlMs: 10 })(context)).toThrow(
      /emptyLogTtlMs must be an integer of at least 10000/,
    );
  });
});
