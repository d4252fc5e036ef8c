import { get } from 'node:http';
import { createConnection } from 'node:net';

/** Building blocks of readiness probes and waits: each call is bounded, none hangs on a dead peer. */

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** GET `url`: its status and body text. Rejects on a connection error or after `timeoutMs`. */
export function httpGet(url: string, timeoutMs = 1_000): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = get(url, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
      response.on('error', reject);
    });
    request.setTimeout(timeoutMs, () => request.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    request.on('error', reject);
  });
}

/** True when something accepts TCP connections on host:port. */
export function portOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(true)); // no RST within the timeout: treat as still open
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Polls `check` every 100 ms until it is true; rejects with `timed out waiting for <what>` after `timeoutMs`. */
export async function pollUntil(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * Waits until nothing accepts connections on host:port. A process's exit can come before the
 * kernel has released its listening socket; a test that kills a broker means "it refuses now".
 */
export async function waitForPortClosed(host: string, port: number, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (await portOpen(host, port)) {
    if (Date.now() > deadline) throw new Error(`port ${port} of ${what} still open after kill`);
    await sleep(100);
  }
}
