import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { FeedBreakLog } from './feed-break-log.js';

describe('FeedBreakLog', () => {
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('names the first ten stopped tails of a minute, then writes how many more at its end', () => {
    jest.useFakeTimers({ now: 0 });
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const log = new FeedBreakLog();
    for (let i = 0; i < 5_000; i++) log.hit(`room-${i}`, 'no event or sound heartbeat from NATS for 30 s');
    expect(warn).toHaveBeenCalledTimes(10);
    expect(warn.mock.calls[0][0]).toBe('Live tail of room "room-0" stopped: no event or sound heartbeat from NATS for 30 s');
    jest.advanceTimersByTime(59_999);
    expect(warn).toHaveBeenCalledTimes(10);
    jest.advanceTimersByTime(1);
    expect(warn).toHaveBeenCalledTimes(11);
    expect(warn.mock.calls[10][0]).toBe('4990 more live tail(s) stopped in the last minute; their members join again');
    // A new minute: named again.
    log.hit('lobby', 'the room log was reset; its epoch changed');
    expect(warn.mock.calls[11][0]).toBe('Live tail of room "lobby" stopped: the room log was reset; its epoch changed');
    jest.advanceTimersByTime(120_000);
    expect(warn).toHaveBeenCalledTimes(12);
  });
});
