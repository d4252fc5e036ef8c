import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { RefusalLog } from './refusal-log.js';

describe('RefusalLog', () => {
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('writes the first refusal of a code, then one line a minute per code with the count', () => {
    jest.useFakeTimers({ now: 0 });
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const log = new RefusalLog('eu');
    for (let i = 0; i < 1000; i++) log.hit('REJECTED');
    log.hit('RATE_LIMITED');
    expect(warn).toHaveBeenCalledTimes(2);
    jest.setSystemTime(61_000);
    log.hit('REJECTED');
    expect(warn).toHaveBeenCalledTimes(3);
    expect(warn.mock.calls[2][0]).toBe('refused 1000 frame(s) with REJECTED in region eu in the last 61 s');
  });

  it('speaks of upgrades for HTTP refusals (a foreign Origin), one line a minute however many', () => {
    jest.useFakeTimers({ now: 0 });
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const log = new RefusalLog('eu', 'upgrade');
    for (let i = 0; i < 500; i++) log.hit('FORBIDDEN (origin not allowed)');
    jest.setSystemTime(60_000);
    log.hit('FORBIDDEN (origin not allowed)');
    expect(warn.mock.calls.map((call) => call[0])).toEqual([
      'refused an upgrade with FORBIDDEN (origin not allowed) in region eu (more are counted, one line a minute)',
      'refused 500 upgrade(s) with FORBIDDEN (origin not allowed) in region eu in the last 60 s',
    ]);
  });
});
