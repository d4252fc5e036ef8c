import { jsonCodec, type GeoCodec } from '../codec.js';
import { GeoClientError } from '../errors.js';
import type { GeoClientOptions } from '../geo-client-options.js';
import type { GeoRegion, WebSocketConstructor } from '../protocol.js';
import { checkDirectoryUrl, checkRegions } from './regions.js';

/** What the options say about where and how to connect, checked once at construction. */
export interface ConnectionOptions {
  /** The `regions` option, checked; `undefined` when the directory is read from `directoryUrl`. */
  directory: GeoRegion[] | undefined;
  directoryUrl: string | undefined;
  Socket: WebSocketConstructor;
  codec: GeoCodec;
}

/**
 * Checks what cannot work, in this order: no options, no or a malformed `regions` entry or
 * `directoryUrl`, a `pinRegion` not in `regions`, a `token` of another type, no WebSocket
 * class, a `heartbeatMs` or `heartbeatTimeoutMs` that is not a positive number of ms, a
 * `codec` that is not one. Throws a `GeoClientError` with code `INVALID_OPTIONS`.
 */
export function checkOptions(options: GeoClientOptions): ConnectionOptions {
  // Options come from plain JavaScript too: anything may be missing.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
  if (typeof options !== 'object' || options === null)
    throw invalidOptions('options are required: new GeoClient({ directoryUrl | regions, ... })');
  let directory: GeoRegion[] | undefined;
  let directoryUrl: string | undefined;
  if (options.regions !== undefined) directory = checkRegions(options.regions, 'regions');
  else if (options.directoryUrl !== undefined) directoryUrl = checkDirectoryUrl(options.directoryUrl);
  else throw invalidOptions("give directoryUrl (any region's base URL) or regions ([{ name, url, wsUrl? }, ...])");
  if (directory && options.pinRegion !== undefined && !directory.some((region) => region.name === options.pinRegion))
    throw invalidOptions(`pinRegion "${options.pinRegion}" is not in regions (${directory.map((region) => region.name).join(', ')})`);
  const token: unknown = options.token;
  if (token !== undefined && typeof token !== 'string' && typeof token !== 'function')
    throw invalidOptions(`token must be a string or a function returning one, got ${typeof token}`);
  const Socket = options.WebSocket ?? (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof Socket !== 'function') throw invalidOptions(noWebSocketClass());
  for (const name of ['heartbeatMs', 'heartbeatTimeoutMs'] as const) {
    const value: unknown = options[name];
    if (value !== undefined && (typeof value !== 'number' || !(value > 0) || value > MAX_TIMER_MS))
      throw invalidOptions(
        `${name} must be a number of milliseconds above 0 (at most ${MAX_TIMER_MS}), got ${typeof value === 'number' ? value : typeof value}`,
      );
  }
  const codec = options.codec ?? jsonCodec;
  if (typeof codec.encode !== 'function' || typeof codec.decode !== 'function' || typeof codec.subprotocol !== 'string')
    throw invalidOptions('codec must be a GeoCodec, e.g. msgpackCodec from "@geo-ws/client/msgpack" (or leave it out for JSON)');
  return { directory, directoryUrl, Socket, codec };
}

/** The longest delay a timer takes (`setTimeout` fires at once for longer ones). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function invalidOptions(message: string): GeoClientError {
  return new GeoClientError('INVALID_OPTIONS', `GeoClient: ${message}`);
}

/** What to do without a WebSocket class, in one line. */
function noWebSocketClass(): string {
  const node = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;
  return node
    ? `this runtime has no global WebSocket (Node ${node} < 22): pass { WebSocket } from the "ws" package: import { WebSocket } from 'ws'`
    : 'this runtime has no global WebSocket: pass a WebSocket class as the WebSocket option';
}
