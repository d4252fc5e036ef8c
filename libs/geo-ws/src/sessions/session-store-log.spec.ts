import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { SessionStoreLog } from './session-store-log.js';

describe('SessionStoreLog', () => {
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('names ten failures a minute, counts the rest, and writes the count at shutdown rather than losing it', () => {
    jest.useFakeTimers({ now: 0 });
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const log = new SessionStoreLog('save');
    for (let i = 0; i < 25; i++) log.hit(`s-${i}`, 'Connection is closed.', i % 5 !== 0);
    expect(warn).toHaveBeenCalledTimes(10);
    expect(warn.mock.calls[0][0]).toBe('session s-0 not saved: Connection is closed.');
    expect(warn.mock.calls[1][0]).toBe('session s-1 not saved: Connection is closed.; trying again');
    jest.advanceTimersByTime(30_000);
    log.close();
    expect(warn).toHaveBeenCalledTimes(11);
    expect(warn.mock.calls[10][0]).toBe(
      '15 more session save(s) failed in the last minute, 3 of them not tried again ' +
        '(those sessions stay stored as of their last save); last error: Connection is closed.',
    );
    jest.advanceTimersByTime(60_000);
    expect(warn).toHaveBeenCalledTimes(11);
    // A new minute: named again.
    log.hit('s-99', 'Connection is closed.');
    expect(warn.mock.calls[11][0]).toBe('session s-99 not saved: Connection is closed.');
  });
});
