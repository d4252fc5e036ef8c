/**
 * Which MessagePack library the wire uses (#14): `msgpackr` and `@msgpack/msgpack`, each in
 * its safe default mode (plain MessagePack any client library reads: msgpackr without its
 * records/structures extension), against JSON, on a room event as the server sends it
 * (`{ event, data: envelope }`) with a small and a ~1 KB `data`.
 *
 *   npm run build && node apps/lab/dist/bench/msgpack-codecs.js [--seconds 1]
 *
 * Printed: encode and decode ops/s (best of three timed rounds after a warm-up), encoded
 * bytes, the browser bundle of each library's encode + decode (esbuild --bundle --minify,
 * then gzip; run through npx, not a dependency), and what each does with hostile input
 * (a depth bomb and a huge length prefix): the time to refuse it and the error.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { Decoder, Encoder } from '@msgpack/msgpack';
import { Packr, Unpackr } from 'msgpackr';

interface Codec {
  name: string;
  encode(value: unknown): Uint8Array | string;
  decode(bytes: Uint8Array | string): unknown;
  /** The browser entry that esbuild bundles (imports only what the wire needs), or none. */
  bundleEntry?: string;
}

const msgpackEncoder = new Encoder();
const msgpackDecoder = new Decoder();
// Plain MessagePack: no records (a msgpackr-only extension), maps decoded as plain objects.
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

const codecs: Codec[] = [
  { name: 'JSON', encode: (value) => JSON.stringify(value), decode: (text) => JSON.parse(text as string) as unknown },
  {
    name: '@msgpack/msgpack',
    encode: (value) => msgpackEncoder.encode(value),
    decode: (bytes) => msgpackDecoder.decode(bytes as Uint8Array),
    bundleEntry: `import { Encoder, Decoder } from '@msgpack/msgpack'; export const e = new Encoder(), d = new Decoder();`,
  },
  {
    name: 'msgpackr',
    encode: (value) => packr.pack(value),
    decode: (bytes) => unpackr.unpack(bytes as Uint8Array) as unknown,
    bundleEntry: `import { Packr, Unpackr } from 'msgpackr'; export const e = new Packr({ useRecords: false }), d = new Unpackr({ useRecords: false });`,
  },
];

function roomEvent(text: string): object {
  return {
    event: 'chat.message',
    data: {
      event_id: '0190f0c2-7d43-7cc1-8f2e-3b5a1d9e4c21',
      room_id: 'room-42',
      type: 'chat.message',
      sender: 'user-1234',
      timestamp: '2026-11-29T10:15:30.123Z',
      region: 'eu',
      seq: 123456,
      data: { text },
    },
  };
}

const payloads = [
  { name: 'small', value: roomEvent('hello, room') },
  { name: '~1 KB', value: roomEvent('The quick brown fox jumps over the lazy dog, and again. '.repeat(18)) },
];

/** Operations per second of `run`, best of three rounds of `seconds / 3` after a warm-up round. */
function opsPerSecond(run: () => unknown, seconds: number): number {
  const round = (ms: number): number => {
    let count = 0;
    const start = performance.now();
    let elapsed = 0;
    while (elapsed < ms) {
      for (let i = 0; i < 1000; i++) run();
      count += 1000;
      elapsed = performance.now() - start;
    }
    return (count / elapsed) * 1000;
  };
  round(200);
  return Math.max(round((seconds * 1000) / 3), round((seconds * 1000) / 3), round((seconds * 1000) / 3));
}

/** Minified and gzipped size of a library's encode + decode in a browser bundle, via esbuild (npx). */
function bundleBytes(entry: string): { minified: number; gzip: number } | string {
  // Inside the workspace's node_modules, so esbuild resolves the libraries as an app would.
  const cache = join(workspaceModules(), '.cache');
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(join(cache, 'msgpack-bundle-'));
  try {
    const file = join(dir, 'entry.mjs');
    writeFileSync(file, entry);
    const out = execFileSync('npx', ['--yes', 'esbuild@0.28', file, '--bundle', '--minify', '--format=esm', '--platform=browser'], {
      encoding: 'buffer',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 16 * 1024 * 1024,
    });
    return { minified: out.length, gzip: gzipSync(out, { level: 9 }).length };
  } catch (error) {
    return `esbuild failed: ${(error as Error).message.split('\n')[0]}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The node_modules folder that holds msgpackr (the workspace's). */
function workspaceModules(): string {
  const entry = createRequire(import.meta.url).resolve('msgpackr');
  return entry.slice(0, entry.lastIndexOf('/node_modules/') + '/node_modules'.length);
}

/** Hostile frames of the size a server would let in (64 KiB): how long each library takes to refuse them. */
function hostile(): { name: string; bytes: Uint8Array }[] {
  const depthBomb = new Uint8Array(64 * 1024).fill(0x91); // fixarray of 1, nested 65,536 deep
  depthBomb[depthBomb.length - 1] = 0xc0;
  const hugeArray = Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]); // array32 of 4,294,967,295, one element
  const hugeString = Uint8Array.from([0xdb, 0xff, 0xff, 0xff, 0xf0, 0x61]); // str32 of ~4 GB, one byte
  const hugeMap = Uint8Array.from([0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x61]);
  return [
    { name: 'depth bomb (64 KiB of 0x91)', bytes: depthBomb },
    { name: 'array32 length 2^32-1, 1 element', bytes: hugeArray },
    { name: 'str32 length ~2^32, 1 byte', bytes: hugeString },
    { name: 'map32 length 2^32-1, 1 key', bytes: hugeMap },
  ];
}

function main(): void {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '1' } } });
  const seconds = Number(values.seconds);
  const json = codecs[0];
  console.log(`Node ${process.version}, ${seconds} s per figure\n`);
  console.log('| payload | codec | encode ops/s | decode ops/s | bytes | vs JSON |');
  console.log('|---|---|---:|---:|---:|---:|');
  for (const payload of payloads) {
    const jsonBytes = Buffer.byteLength(json.encode(payload.value));
    for (const codec of codecs) {
      const encoded = codec.encode(payload.value);
      const size = typeof encoded === 'string' ? Buffer.byteLength(encoded) : encoded.length;
      const roundTrip = JSON.stringify(codec.decode(encoded)) === JSON.stringify(payload.value);
      if (!roundTrip) throw new Error(`${codec.name} does not round-trip the ${payload.name} event`);
      const encodeOps = opsPerSecond(() => codec.encode(payload.value), seconds);
      const decodeOps = opsPerSecond(() => codec.decode(encoded), seconds);
      console.log(
        `| ${payload.name} | ${codec.name} | ${Math.round(encodeOps).toLocaleString('en')} | ${Math.round(decodeOps).toLocaleString('en')} | ${size} | ${((size / jsonBytes) * 100).toFixed(0)}% |`,
      );
    }
  }
  console.log('\n| codec | browser bundle, minified | gzip |');
  console.log('|---|---:|---:|');
  for (const codec of codecs.slice(1)) {
    const size = bundleBytes(codec.bundleEntry!);
    if (typeof size === 'string') console.log(`| ${codec.name} | ${size} | |`);
    else console.log(`| ${codec.name} | ${size.minified.toLocaleString('en')} B | ${size.gzip.toLocaleString('en')} B |`);
  }
  console.log('\n| hostile input | codec | time to refuse (ms) | outcome |');
  console.log('|---|---|---:|---|');
  for (const input of hostile()) {
    for (const codec of codecs.slice(1)) {
      const start = performance.now();
      let outcome: string;
      try {
        const value = codec.decode(input.bytes);
        outcome = `decoded (${typeof value})`;
      } catch (error) {
        outcome = `${(error as Error).name}: ${(error as Error).message.slice(0, 60)}`;
      }
      console.log(`| ${input.name} | ${codec.name} | ${(performance.now() - start).toFixed(2)} | ${outcome.replace(/\|/g, '/')} |`);
    }
  }
}

main();
