import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { startDeployment, type LabDeployment } from '../apps/lab/src/deployment/deployment.js';
import type { BrokerKind } from '../apps/lab/src/deployment/deployment.types.js';
import { LinkProxy } from '../apps/lab/src/topology/link-proxy.js';
import { demoToken } from './support/demo-token.js';
import { WsTestClient } from './support/ws-test-client.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An echo server on loopback, closed by the caller. */
async function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, port: (server.address() as { port: number }).port };
}

async function open(port: number): Promise<{ socket: Socket; received: Buffer[]; closed: Promise<void> }> {
  const socket = connect(port, '127.0.0.1');
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return { socket, received, closed };
}

describe('lab link proxy', () => {
  let echo: { server: Server; port: number };
  beforeAll(async () => {
    echo = await echoServer();
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => echo.server.close(() => resolve()));
  });

  it('delays each direction, adds jitter and never reorders', async () => {
    const proxy = await new LinkProxy({ host: '127.0.0.1', port: echo.port }, 30, { jitterMs: 40 }).start();
    try {
      const { socket, received } = await open(proxy.port);
      const sentAt = Date.now();
      const count = 300;
      // One line per write, spread over ~150 ms so the jitter differs chunk by chunk.
      for (let n = 0; n < count; n++) {
        socket.write(`${n}\n`);
        if (n % 20 === 0) await sleep(10);
      }
      const deadline = Date.now() + 5_000;
      while (Buffer.concat(received).toString().split('\n').length <= count && Date.now() < deadline) await sleep(10);
      const lines = Buffer.concat(received).toString().trim().split('\n').map(Number);
      expect(lines).toEqual(Array.from({ length: count }, (_, n) => n));
      // Two directions at >= 30 ms each.
      expect(Date.now() - sentAt).toBeGreaterThanOrEqual(60);
      expect(proxy.stats()).toMatchObject({
        connections: 1,
        bytesUp: Buffer.concat(received).length,
        bytesDown: Buffer.concat(received).length,
      });
      socket.destroy();
    } finally {
      await proxy.stop();
    }
  });

  it('cut resets and refuses, stall holds data until heal', async () => {
    const proxy = await new LinkProxy({ host: '127.0.0.1', port: echo.port }).start();
    try {
      const first = await open(proxy.port);
      proxy.cut();
      await first.closed;
      // Accepted by the kernel, then reset at once (the connect itself may already see the reset).
      await expect(
        open(proxy.port).then(
          ({ closed }) => closed,
          () => undefined,
        ),
      ).resolves.toBeUndefined();
      expect(proxy.stats().refused).toBe(1);
      proxy.heal();
      const second = await open(proxy.port);
      second.socket.write('a');
      await sleep(100);
      expect(Buffer.concat(second.received).toString()).toBe('a');
      proxy.stall();
      second.socket.write('b');
      await sleep(300);
      expect(Buffer.concat(second.received).toString()).toBe('a');
      expect(second.socket.destroyed).toBe(false);
      proxy.heal();
      await sleep(100);
      expect(Buffer.concat(second.received).toString()).toBe('ab');
      second.socket.destroy();
    } finally {
      await proxy.stop();
    }
  });

  it('stall holds a close until heal, after the bytes sent before it', async () => {
    // The upstream side records what reaches it and when its peer goes away.
    let upstreamData = '';
    let upstreamClosed = false;
    const sink = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => (upstreamData += chunk.toString()));
      socket.on('close', () => (upstreamClosed = true));
    });
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', () => resolve()));
    const proxy = await new LinkProxy({ host: '127.0.0.1', port: (sink.address() as { port: number }).port }).start();
    try {
      const caller = await open(proxy.port);
      proxy.stall();
      caller.socket.write('late');
      await sleep(50);
      caller.socket.destroy();
      await sleep(300);
      expect(upstreamData).toBe('');
      expect(upstreamClosed).toBe(false);
      proxy.heal();
      await sleep(200);
      expect(upstreamData).toBe('late');
      expect(upstreamClosed).toBe(true);
    } finally {
      await proxy.stop();
      await new Promise<void>((resolve) => sink.close(() => resolve()));
    }
  });
});

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const ourNamespaces = (): string[] => {
  try {
    const prefix = `geolab-${process.pid.toString(36)}x`;
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.startsWith(prefix));
  } catch {
    return [];
  }
};
const brokerBytes = (deployment: LabDeployment): number =>
  Object.entries(deployment.linkStats())
    .filter(([name]) => !name.startsWith('client'))
    .reduce((sum, [, stats]) => sum + stats.bytesUp + stats.bytesDown, 0);
const reachable = (url: string): Promise<boolean> =>
  fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) }).then(
    (response) => response.ok,
    () => false,
  );

describe.each<BrokerKind>(['nats-supercluster', 'redis'])('lab deployment on %s (2 regions × 1)', (broker) => {
  let deployment: LabDeployment;

  beforeAll(async () => {
    deployment = await startDeployment({
      impl: 'geo',
      broker,
      regions: ['asia', 'eu'],
      instances: 1,
      delays: { 'asia-eu': 20 },
      defaultDelayMs: 20,
      jitterMs: 5,
      lossPercent: 0,
      netns: 'auto',
      demoSecret: 'lab-topology-e2e-secret-of-32-bytes!!',
      namespace: `labtopo${randomUUID().slice(0, 6)}`,
    });
  }, 60_000);

  afterAll(async () => {
    await deployment.stop();
  });

  it('gives reachable targets, carries cross-region traffic through the proxies, cuts and heals', async () => {
    const [home, remote] = deployment.targetsFor('asia', 0);
    expect([home.region, remote.region]).toEqual(['asia', 'eu']);
    expect(await reachable(home.httpUrl)).toBe(true);
    expect(await reachable(remote.httpUrl)).toBe(true);

    const eu = deployment.targetsFor('eu', 0)[0];
    const room = `lab-${randomUUID().slice(0, 6)}`;
    const publisher = await WsTestClient.connect(home.wsUrl, { token: await demoToken(home.httpUrl, 'asia-user') });
    const reader = await WsTestClient.connect(eu.wsUrl, { token: await demoToken(eu.httpUrl, 'eu-user') });
    try {
      await publisher.join(room);
      const joined = await reader.join(room);
      const before = brokerBytes(deployment);
      await publisher.publish('chat.message', room, { text: 'before the cut' });
      await reader.waitForEvents(room, 1, 15_000);
      expect(brokerBytes(deployment)).toBeGreaterThan(before);

      deployment.cutLink('asia', 'eu');
      expect(await reachable(remote.httpUrl)).toBe(false);
      const during = brokerBytes(deployment);
      await sleep(500);
      expect(brokerBytes(deployment)).toBe(during);

      deployment.healLink('asia', 'eu');
      // The remote region is ready again once its broker links are back.
      const deadline = Date.now() + 20_000;
      while (!(await reachable(remote.httpUrl)) && Date.now() < deadline) await sleep(200);
      expect(await reachable(remote.httpUrl)).toBe(true);
      // The broker links carry traffic again.
      const healed = brokerBytes(deployment);
      const healedAt = Date.now();
      await publisher.publishUntilAcked('chat.message', room, { text: 'after the heal' });
      while (brokerBytes(deployment) === healed && Date.now() < deadline) await sleep(100);
      expect(brokerBytes(deployment)).toBeGreaterThan(healed);
      // A member whose tail failed around the cut is told so (geo.error UNAVAILABLE: "join it
      // again"); it rejoins from what it has, as the SDK does, and misses nothing.
      const [first] = reader.events(room);
      let rejoined = 0;
      const until = Date.now() + (broker === 'redis' ? 40_000 : 10_000);
      while (reader.events(room).length < 2 && Date.now() < until) {
        const told = reader.errors().filter((error) => error.code === 'UNAVAILABLE').length;
        if (told > rejoined) {
          rejoined = told;
          await reader.join(room, { since: first.seq!, epoch: joined.epoch });
        }
        await sleep(100);
      }
      const texts = reader.events(room).map((event) => (event.data as { text: string }).text);
      // On NATS this failed in about 2 of 3 runs while tails read through pull consumers: a
      // pull request lost across the healed gateway left the tail waiting, heartbeats and
      // all, for nothing (#12). Push consumers have nothing to lose that way.
      expect(texts).toEqual(['before the cut', 'after the heal']);
      console.log(`${broker}: ${texts.length} events, ${Date.now() - healedAt} ms after the heal`);
    } finally {
      publisher.close();
      reader.close();
    }
  }, 90_000);

  it('stops every process and namespace it started', async () => {
    const pids = [...deployment.serverPids(), ...deployment.brokerPids()];
    expect(pids.length).toBeGreaterThanOrEqual(4);
    await deployment.stop();
    await deployment.stop(); // idempotent
    await sleep(100);
    expect(pids.filter(alive)).toEqual([]);
    expect(ourNamespaces()).toEqual([]);
  }, 30_000);
});
