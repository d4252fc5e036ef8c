import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { ClientConnection } from './client-connection.js';
import { LimitLog } from './limit-log.js';

const connection = (i: number) => ({ id: `c${i}`, principal: { id: `user${i}` } }) as unknown as ClientConnection;

describe('LimitLog', () => {
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('writes one line per connection and limit a minute, and at most ten per limit over all connections', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const log = new LimitLog('eu');
    for (let round = 0; round < 3; round++) for (let i = 0; i < 1000; i++) log.hit(connection(i), 'RATE_LIMITED');
    log.hit(connection(0), 'PAYLOAD_TOO_LARGE');
    expect(warn).toHaveBeenCalledTimes(11);
    jest.setSystemTime(1_060_001);
    log.hit(connection(5000), 'RATE_LIMITED');
    expect(warn.mock.calls.slice(11).map((call) => call[0])).toEqual([
      'limit RATE_LIMITED: 2970 more hit(s) left out of the log in region eu in the last minute',
      'limit RATE_LIMITED: connection c5000 (sender user5000) in region eu',
    ]);
  });
});
