import { describe, expect, it } from '@jest/globals';
import { Packr } from 'msgpackr';
import { parseFrame, parseMsgpackFrame } from './frames.js';
import { packMsgpack } from './msgpack.js';
import { chooseSubprotocol, codecOf } from './wire.js';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s/g, ''), 'hex');
const refusal = (bytes: Uint8Array, maxDepth = 32): string => {
  try {
    parseMsgpackFrame(bytes, maxDepth);
    return 'accepted';
  } catch (error) {
    const { code, message } = error as { code: string; message: string };
    return `${code}: ${message}`;
  }
};

describe('subprotocol negotiation', () => {
  it("answers the first subprotocol it speaks, in the client's order, never the token", () => {
    expect(chooseSubprotocol(['geo-ws.v1.msgpack', 'bearer.abc'])).toBe('geo-ws.v1.msgpack');
    expect(chooseSubprotocol(['bearer.abc', 'geo-ws.v1'])).toBe('geo-ws.v1');
    expect(chooseSubprotocol(['geo-ws.v1', 'geo-ws.v1.msgpack'])).toBe('geo-ws.v1');
    expect(chooseSubprotocol(['bearer.abc', 'geo-ws.v2'])).toBe(false);
    expect([codecOf('geo-ws.v1.msgpack'), codecOf('geo-ws.v1'), codecOf('')]).toEqual(['msgpack', 'json', 'json']);
  });
});

describe('MessagePack frames', () => {
  it('reads the same frame as JSON, from bytes written by hand (plain MessagePack)', () => {
    // {"event": "geo.ping", "data": {"n": 1}}
    const bytes = hex('82 a5 6576656e74 a8 67656f2e70696e67 a4 64617461 81 a1 6e 01');
    expect(parseMsgpackFrame(bytes)).toEqual({ event: 'geo.ping', data: { n: 1 } });
  });

  it('writes plain MessagePack: no records, undefined as JSON has it, ISO strings stay strings', () => {
    const bytes = packMsgpack({ event: 'e', data: { a: undefined, b: [undefined], at: '2026-01-01T00:00:00.000Z' } });
    expect(parseMsgpackFrame(bytes)).toEqual({ event: 'e', data: { b: [null], at: '2026-01-01T00:00:00.000Z' } });
    expect(bytes.toString('hex')).not.toMatch(/^d4|c7|d6/); // no extension header at the start (records use one)
  });

  it('turns what JSON would turn into something else the same way (a Date a handler added is its ISO string, not an extension)', () => {
    const data = { at: new Date(0), nan: NaN, list: [undefined], map: new Map([['a', 1]]) };
    expect(parseMsgpackFrame(packMsgpack({ event: 'e', data }))).toEqual(JSON.parse(JSON.stringify({ event: 'e', data })));
  });

  it.each([
    ['a text of 4 GB announced, 1 byte sent', '82 a5 6576656e74 a1 65 a4 64617461 db fffffff0 61', 'a string runs past the end'],
    ['an array of 2^32-1 announced', '82 a5 6576656e74 a1 65 a4 64617461 dd ffffffff c0', 'an array or map runs past the end'],
    ['a map of 2^32-1 announced', 'df ffffffff a1 65', 'an array or map runs past the end'],
    ['a truncated length prefix', '82 a5 6576656e74 a1 65 a4 64617461 da ff', 'a length prefix runs past the end'],
    ['a truncated float', '82 a5 6576656e74 a1 65 a4 64617461 cb 0000', 'a number runs past the end'],
    ['a map key that is a number', '82 a5 6576656e74 a1 65 a4 64617461 81 01 c0', 'map keys must be strings'],
    ['a map key that is a map', '82 a5 6576656e74 a1 65 a4 64617461 81 80 c0', 'map keys must be strings'],
    ['a bin where a string is expected', '82 a5 6576656e74 c4 01 65 a4 64617461 c0', 'binary (bin) values are not accepted'],
    ['a timestamp extension', '82 a5 6576656e74 a1 65 a4 64617461 d6 ff 00000000', 'extension types are not accepted'],
    [
      'an ext 8 (msgpackr would build a RegExp or an Error)',
      '82 a5 6576656e74 a1 65 a4 64617461 c7 01 78 00',
      'extension types are not accepted',
    ],
    ['0xc1', '82 a5 6576656e74 a1 65 a4 64617461 c1', '0xc1 is never used'],
    ['bytes after the value', '82 a5 6576656e74 a1 65 a4 64617461 c0 c0', '1 bytes follow'],
    ['nothing', '', 'a value runs past the end'],
    ['an array as the frame', '92 a1 65 c0', 'frame must be an object'],
    ['no event', '81 a4 64617461 c0', 'frame.event must be'],
  ])('refuses %s with MALFORMED_FRAME', (_, bytes, reason) => {
    expect(refusal(hex(bytes))).toMatch(new RegExp(`^MALFORMED_FRAME: .*${reason.replace(/[()^]/g, '\\$&')}`));
  });

  it('refuses a depth bomb before decoding it, in about the time of reading its bytes', () => {
    const bomb = Buffer.concat([hex('82 a5 6576656e74 a1 65 a4 64617461'), Buffer.alloc(1024 * 1024, 0x91), hex('c0')]);
    expect(refusal(bomb)).toBe('MALFORMED_FRAME: MessagePack frame: frame.data nests arrays or maps deeper than 32 levels');
  });

  it('data may nest maxDepth levels, as in JSON, and not one more', () => {
    const nested = (depth: number): unknown => (depth === 0 ? 1 : [nested(depth - 1)]);
    const frame = (depth: number) => new Packr({ useRecords: false }).pack({ event: 'e', data: nested(depth) });
    expect(refusal(frame(4), 4)).toBe('accepted');
    expect(refusal(frame(5), 4)).toMatch(/^MALFORMED_FRAME: .*deeper than 4 levels/);
  });
});

describe('the key __proto__', () => {
  const data = JSON.parse('{"event_id":"e-1","room_id":"r","data":{"list":[{"__proto__":{"admin":true}}]}}') as unknown;

  it('is refused in both codecs alike, naming the event, before MessagePack could rename it to __proto_', () => {
    const asMsgpack = new Packr({ useRecords: false }).pack({ event: 'chat.message', data });
    const asJson = JSON.stringify({ event: 'chat.message', data });
    expect(asJson).toContain('"__proto__":{"admin":true}');
    for (const parse of [() => parseMsgpackFrame(asMsgpack), () => parseFrame(asJson)]) {
      expect(parse).toThrow(
        expect.objectContaining({ code: 'MALFORMED_FRAME', eventId: 'e-1', message: expect.stringMatching(/"__proto__"/) }),
      );
    }
    // At the frame's own level too.
    expect(() => parseFrame('{"event":"e","data":1,"__proto__":{}}')).toThrow(expect.objectContaining({ code: 'MALFORMED_FRAME' }));
    expect(refusal(hex('83 a5 6576656e74 a1 65 a4 64617461 c0 a9 5f5f70726f746f5f5f 80'))).toMatch(/^MALFORMED_FRAME: .*"__proto__"/);
    // Nothing was polluted on the way.
    expect(({} as { admin?: boolean }).admin).toBeUndefined();
  });

  it('look-alikes pass: __proto_ as a key, __proto__ as a value', () => {
    const frame = { event: 'e', data: { __proto_: 1, list: ['__proto__'], text: '__proto__' } };
    expect(parseMsgpackFrame(new Packr({ useRecords: false }).pack(frame))).toEqual(frame);
    expect(parseFrame(JSON.stringify(frame))).toEqual(frame);
  });
});
