import { GeoClientError } from '../errors.js';
import type { GeoRegion, GeoRegionOption } from '../protocol.js';

/**
 * The server's default WebSocket path (its `path` option): the WebSocket URL of a region
 * given without `wsUrl` is its `url` with `ws:`/`wss:` and this path, as the server
 * derives it for `GET /geo/regions`.
 */
export const DEFAULT_WS_PATH = '/ws';

function invalid(message: string): GeoClientError {
  return new GeoClientError('INVALID_OPTIONS', `GeoClient: ${message}`);
}

function parseUrl(value: unknown): URL | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

/**
 * Checks a region directory (the `regions` option, or what `GET /geo/regions` answered,
 * named by `source`) and completes it: every entry needs a unique non-empty `name` and an
 * absolute http(s) `url`; `wsUrl`, if given, must be an absolute ws(s) URL, and defaults
 * to `url` with `ws:`/`wss:` and `/ws` appended to its path (what the server derives). A
 * trailing slash of `url` is dropped. Throws `GeoClientError('INVALID_OPTIONS')` naming
 * the entry and the field.
 */
export function checkRegions(value: unknown, source: string): GeoRegion[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw invalid(`${source} must be a non-empty array of { name, url, wsUrl? }, got ${describe(value)}`);
  }
  const seen = new Map<string, number>();
  return (value as unknown[]).map((entry, index) => {
    const at = `${source}[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw invalid(`${at} must be an object { name, url, wsUrl? }, got ${describe(entry)}`);
    }
    const { name, url, wsUrl } = entry as Partial<Record<keyof GeoRegionOption, unknown>>;
    if (typeof name !== 'string' || name.length === 0) throw invalid(`${at}.name must be a non-empty string, got ${describe(name)}`);
    const first = seen.get(name);
    if (first !== undefined) throw invalid(`${at}.name "${name}" is a duplicate of ${source}[${first}]: region names must be unique`);
    seen.set(name, index);
    const base = parseUrl(url);
    if (!base || (base.protocol !== 'http:' && base.protocol !== 'https:')) {
      throw invalid(
        `${at} ("${name}").url must be an absolute http: or https: URL such as "https://${name}.example.com" (probes and the directory use it), got ${describe(url)}`,
      );
    }
    let socketUrl: string;
    if (wsUrl === undefined) {
      socketUrl = `${base.protocol === 'https:' ? 'wss' : 'ws'}://${base.host}${base.pathname.replace(/\/$/, '')}${DEFAULT_WS_PATH}`;
    } else {
      const parsed = parseUrl(wsUrl);
      if (!parsed || (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:')) {
        throw invalid(
          `${at} ("${name}").wsUrl must be an absolute ws: or wss: URL such as "wss://${name}.example.com/ws", got ${describe(wsUrl)}`,
        );
      }
      socketUrl = wsUrl as string;
    }
    return { name, url: base.toString().replace(/\/$/, ''), wsUrl: socketUrl };
  });
}

/** Checks `directoryUrl`: an absolute http(s) URL. */
export function checkDirectoryUrl(value: unknown): string {
  const url = parseUrl(value);
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw invalid(`directoryUrl must be an absolute http: or https: URL (any region's base URL), got ${describe(value)}`);
  }
  return (value as string).replace(/\/$/, '');
}

/** A value as an error message shows it. */
function describe(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (value === undefined || typeof value === 'symbol' || typeof value === 'bigint') return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return 'an object that has no JSON form';
  }
}
