import type * as PromClient from 'prom-client';
import { GeoConfigError } from '../errors/geo-config.error.js';

/**
 * prom-client, loaded only when metrics are on, from the app's own install: an optional
 * peer, so geo-ws registers on the same default registry as the rest of the app (and
 * `@willsoto/nestjs-prometheus`), never on a second copy of its own.
 */
export async function loadPromClient(): Promise<typeof PromClient> {
  try {
    return await import('prom-client');
  } catch (error) {
    throw new GeoConfigError(
      `metrics need prom-client: npm install prom-client, or leave metrics off (${error instanceof Error ? error.message : String(error)})`,
    );
  }
}
