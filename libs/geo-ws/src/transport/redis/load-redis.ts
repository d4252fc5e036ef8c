import type * as IoRedis from 'ioredis';
import { GeoConfigError } from '../../errors/geo-config.error.js';

/** ioredis, loaded on first use so apps on other transports need not install it. */
export async function loadRedis(): Promise<typeof IoRedis> {
  try {
    return await import('ioredis');
  } catch (error) {
    throw new GeoConfigError(
      `redisTransport needs ioredis: npm install ioredis (${error instanceof Error ? error.message : String(error)})`,
    );
  }
}
