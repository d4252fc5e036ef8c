import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { parseInboundEvent } from '../envelope/envelope.rules.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import { parseFrame, parseJoin, parseMsgpackFrame } from './frames.js';
import { packMsgpack } from './msgpack.js';

/** Runs `parse` and says how it ended: a value, or a GeoProtocolError (anything else is a bug). */
function outcome(parse: () => unknown): 'ok' | 'refused' {
  try {
    parse();
    return 'ok';
  } catch (error) {
    if (error instanceof GeoProtocolError) return 'refused';
    throw error;
  }
}

const anyJson = fc.jsonValue({ maxDepth: 6 });

describe('frame parser and envelope validator under random input (fast-check)', () => {
  it('any string: a frame or MALFORMED_FRAME, never a crash', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'binary' }),
          anyJson.map((value) => JSON.stringify(value)),
        ),
        (raw) => {
          const result = outcome(() => parseFrame(raw));
          if (result === 'refused') expect(() => parseFrame(raw)).toThrow(expect.objectContaining({ code: 'MALFORMED_FRAME' }));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('any bytes as a MessagePack frame: a frame or MALFORMED_FRAME, never a crash', () => {
    const frameLike = anyJson.map((data) => packMsgpack({ event: 'chat.message', data }));
    // Valid frames with bytes flipped, cut or appended: the guard must catch what a decoder would trust.
    const mangled = fc
      .tuple(frameLike, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'cut', 'append'))
      .map(([bytes, at, byte, how]) => {
        const copy = Buffer.from(bytes);
        const index = at % Math.max(1, copy.length);
        if (how === 'flip') copy[index] = byte;
        return how === 'cut' ? copy.subarray(0, index) : how === 'append' ? Buffer.concat([copy, Buffer.from([byte])]) : copy;
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), frameLike, mangled), (bytes) => {
        const result = outcome(() => parseMsgpackFrame(bytes, 8));
        if (result === 'refused') expect(() => parseMsgpackFrame(bytes, 8)).toThrow(expect.objectContaining({ code: 'MALFORMED_FRAME' }));
      }),
      { numRuns: 5000 },
    );
  });

  it('any JSON value as data reads back the same through MessagePack as through JSON', () => {
    fc.assert(
      fc.property(anyJson, (data) => {
        fc.pre(!JSON.stringify(data).includes('__proto__')); // msgpackr renames that key; JSON.parse keeps it
        const viaJson = parseFrame(JSON.stringify({ event: 'e', data }));
        expect(JSON.stringify(parseMsgpackFrame(packMsgpack({ event: 'e', data })))).toBe(JSON.stringify(viaJson));
      }),
      { numRuns: 2000 },
    );
  });

  it('any JSON as a publish or a join: accepted only when well-formed, else INVALID_ENVELOPE', () => {
    fc.assert(
      fc.property(anyJson, (value) => {
        for (const parse of [() => parseInboundEvent(value), () => parseJoin(value)]) {
          const result = outcome(parse);
          if (result === 'refused') expect(parse).toThrow(expect.objectContaining({ code: 'INVALID_ENVELOPE' }));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('accepted publishes carry exactly the three client fields, and never a server-owned one', () => {
    const inbound = fc.record(
      {
        event_id: fc.oneof(fc.uuid(), fc.string()),
        room_id: fc.string({ maxLength: 140 }),
        data: anyJson,
        sender: fc.string(),
        seq: fc.integer(),
        region: fc.string(),
        timestamp: fc.string(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(inbound, (value) => {
        let parsed: ReturnType<typeof parseInboundEvent>;
        try {
          parsed = parseInboundEvent(value);
        } catch (error) {
          expect(error).toBeInstanceOf(GeoProtocolError);
          return;
        }
        expect(Object.keys(parsed).sort()).toEqual(['data', 'event_id', 'room_id']);
        for (const field of ['sender', 'seq', 'region', 'timestamp']) expect(field in value).toBe(false);
        expect(parsed.event_id).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
        expect(parsed.room_id).toMatch(/^[^\s\p{C}]{1,128}$/u);
      }),
      { numRuns: 3000 },
    );
  });
});
