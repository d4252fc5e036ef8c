import { describe, expect, it } from '@jest/globals';
import { parseFrame, parseJoin, parseLeave } from './frames.js';

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
});
