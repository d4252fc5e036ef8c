import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { Redis } from 'ioredis';

/** The environment both peers take (the lab's deployment sets it; docs/LAB.md). */
export interface PeerEnv {
  region: string;
  port: number;
  host: string;
  redisUrl: string;
  /** This region's replica; subscriptions read from it when given. */
  replicaUrl?: string;
  /** Prefix of every channel and key, so runs sharing one Redis do not meet. */
  namespace: string;
}

export function readPeerEnv(env: NodeJS.ProcessEnv = process.env): PeerEnv {
  const port = Number(env.PORT ?? '0');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT: "${env.PORT ?? ''}" is not a port`);
  return {
    region: env.REGION ?? 'local',
    port,
    host: env.HOST ?? '127.0.0.1',
    redisUrl: env.GEO_REDIS_URL ?? 'redis://127.0.0.1:6379',
    replicaUrl: env.GEO_REDIS_REPLICA_URL === '' ? undefined : env.GEO_REDIS_REPLICA_URL,
    namespace: env.GEO_NAMESPACE ?? 'geolab',
  };
}

/**
 * A Redis client that retries forever with a short capped delay (a broker fault must not
 * end the peer) and reports errors once per state change instead of once per retry.
 */
export function redisClient(url: string, name: string): Redis {
  const client = new Redis(url, {
    lazyConnect: false,
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    retryStrategy: (times) => Math.min(1000, 50 * times),
  });
  let reported = false;
  client.on('error', (error: Error) => {
    if (reported) return;
    reported = true;
    console.error(`${name}: redis ${url}: ${error.message}`);
  });
  client.on('ready', () => (reported = false));
  return client;
}

/** `GET /healthz` (the process runs) and `GET /readyz` (200 when `ready()`). */
export function healthHandler(ready: () => boolean): (request: IncomingMessage, response: ServerResponse) => void {
  return (request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/healthz') return void response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    if (path === '/readyz') {
      const ok = ready();
      return void response.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ready' : 'not ready');
    }
    // Socket.IO answers its own path before this runs; anything else is unknown here.
    if (!response.headersSent && !path.startsWith('/socket.io')) response.writeHead(404).end();
  };
}

/**
 * Runs `close` once on SIGTERM or SIGINT, then exits 0; a close that hangs is cut short
 * after `graceMs` (exit 1), so the lab never waits on a peer.
 */
export function onShutdown(name: string, close: () => Promise<void>, graceMs = 5000): void {
  let closing = false;
  const stop = (signal: string) => {
    if (closing) return;
    closing = true;
    const timer = setTimeout(() => {
      console.error(`${name}: still closing ${graceMs} ms after ${signal}; exiting`);
      process.exit(1);
    }, graceMs);
    timer.unref();
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`${name}: close failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/** Quits a Redis client, or drops it if it cannot say goodbye quickly (broker down). */
export async function quitRedis(client: Redis): Promise<void> {
  if (client.status !== 'ready') return client.disconnect();
  await Promise.race([client.quit().then(() => undefined), new Promise<void>((resolve) => setTimeout(resolve, 1000).unref())]);
  client.disconnect();
}

/** A string of 1..max characters, or undefined. */
export function boundedString(value: unknown, max: number): string | undefined {
  return typeof value === 'string' && value.length > 0 && value.length <= max ? value : undefined;
}

/**
 * What both peers start with: their environment, a publishing Redis client (the primary),
 * a subscribing one (this region's replica when there is one), and the HTTP server with
 * `/healthz` and `/readyz` (ready once both clients are).
 */
export function startPeer(kind: string): { env: PeerEnv; name: string; pub: Redis; sub: Redis; http: HttpServer } {
  const env = readPeerEnv();
  const name = `${kind} ${env.region}:${env.port}`;
  const pub = redisClient(env.redisUrl, name);
  const sub = redisClient(env.replicaUrl ?? env.redisUrl, name);
  const http: HttpServer = createServer(healthHandler(() => http.listening && pub.status === 'ready' && sub.status === 'ready'));
  http.on('error', (error) => {
    console.error(`${name}: ${error.message}`);
    process.exit(1);
  });
  return { env, name, pub, sub, http };
}
