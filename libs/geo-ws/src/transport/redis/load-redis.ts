import type * as IoRedis from 'ioredis';

/** ioredis, loaded on first use so apps on other transports need not install it. */
export async function loadRedis(): Promise<typeof IoRedis> {
  try {
    return await import('ioredis');
  } catch (error) {
    throw new Error('The Redis transport needs ioredis: npm install ioredis', { cause: error });
  }
}
