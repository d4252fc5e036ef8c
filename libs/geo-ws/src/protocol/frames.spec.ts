import { describe, expect, it } from '@jest/globals';
import { isJoinBatch, parseFrame, parseJoin, parseJoinBatch, parseLeave } from './frames.js';

describe('frames', () => {
  it('parses { event, data }', () => {
    expect(parseFrame('{"event":"chat.message","data":{"x":1}}')).toEqual({ event: 'chat.message', data: { x: 1 } });
  });

  it.each(['', 'nope', '[]', '"s"', 'null', '{"data":1}', '{"event":""}', `{"event":"${'e'.repeat(129)}"}`])(
    'refuses %j as MALFORMED_FRAME',
    (raw) => {
      expect(() => parseFrame(raw)).toThrow(expect.objectContaining({ code: 'MALFORMED_FRAME' }));
    },
  );

  it('parses joins with and without a resume position', () => {
    expect(parseJoin({ room: 'lobby' })).toEqual({ room: 'lobby', since: undefined, epoch: undefined, regional: undefined });
    expect(parseJoin({ room: 'lobby', since: 4, epoch: 'e1', regional: { since: 2 } })).toEqual({
      room: 'lobby',
      since: 4,
      epoch: 'e1',
      regional: { since: 2, epoch: undefined },
    });
  });

  it.each([
    {},
    { room: '' },
    { room: 'a b' },
    { room: 'r', since: -1 },
    { room: 'r', since: 1.5 },
    { room: 'r', since: '3' },
    { room: 'r', epoch: 7 },
  ])('refuses join %j', (data) => {
    expect(() => parseJoin(data)).toThrow(expect.objectContaining({ code: 'INVALID_ENVELOPE' }));
  });

  it('parses leaves', () => {
    expect(parseLeave({ room: 'r' })).toEqual({ room: 'r' });
    expect(() => parseLeave(null)).toThrow(expect.objectContaining({ code: 'INVALID_ENVELOPE' }));
  });

  it('parses a batch join: each entry as a single join, in order', () => {
    expect(isJoinBatch({ rooms: [] })).toBe(true);
    expect(isJoinBatch({ room: 'r' })).toBe(false);
    expect(parseJoinBatch({ rooms: [{ room: 'a' }, { room: 'b', since: 4, epoch: 'e1', regional: { since: 2 } }] }, 100)).toEqual([
      { room: 'a', since: undefined, epoch: undefined, regional: undefined },
      { room: 'b', since: 4, epoch: 'e1', regional: { since: 2, epoch: undefined } },
    ]);
  });

  it.each([
    [{ rooms: null }, 'rooms must be a non-empty array'],
    [{ rooms: {} }, 'rooms must be a non-empty array'],
    [{ rooms: [] }, 'rooms must be a non-empty array'],
    [{ rooms: [{ room: 'a' }], room: 'a' }, 'either { room, since?, epoch? } or { rooms: [...] }'],
    [{ rooms: [{ room: 'a' }, 'b'] }, 'rooms[1] must be { room, since?, epoch? }'],
    [{ rooms: [{ room: 'a' }, { room: 'a b' }] }, 'rooms[1].room must be'],
    [{ rooms: [{ room: 'a', since: -1 }] }, 'rooms[0].since must be'],
    [{ rooms: [{ room: 'a', regional: { epoch: 7 } }] }, 'rooms[0].regional.epoch must be'],
    [{ rooms: [{ room: 'a' }, { room: 'b' }, { room: 'a', since: 3 }] }, 'rooms[2]: room "a" is listed twice'],
    [
      { rooms: [{ room: 'a' }, { room: 'b' }, { room: 'c' }, { room: 'd' }] },
      'rooms has 4 entries; at most 3 (limits.maxRoomsPerConnection)',
    ],
  ])('refuses the batch %j whole (INVALID_ENVELOPE: %s)', (data, message) => {
    expect(() => parseJoinBatch(data, 3)).toThrow(
      expect.objectContaining({ code: 'INVALID_ENVELOPE', message: expect.stringContaining(message) }),
    );
  });
});
