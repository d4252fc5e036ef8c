import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { deployRegions, type Deployment } from './support/regions.js';
import { handshakeResponse } from './support/tokens.js';
import { WsTestClient } from './support/ws-test-client.js';

/** The upgrade of a new client of the fixture app (its authenticator takes a `name`). */
const upgrade = (wsUrl: string) => handshakeResponse(`${wsUrl}?name=arrival`);

/** Stalls this process's event loop (the region runs in it) for `ms` of every `everyMs`, as a herd of arrivals would. */
function stallLoop(ms: number, everyMs: number): () => void {
  const timer = setInterval(() => {
    const until = Date.now() + ms;
    while (Date.now() < until);
  }, everyMs);
  return () => clearInterval(timer);
}

describe('load shedding (limits.maxEventLoopDelayMs)', () => {
  let deployment: Deployment;

  beforeAll(async () => {
    deployment = await deployRegions(['eu'], { geo: { limits: { maxEventLoopDelayMs: 150 } } });
  });

  afterAll(async () => {
    await deployment.close();
  });

  it('refuses new connections with 503 UNAVAILABLE and Retry-After while the loop lags, keeps serving the open ones, and admits again once it is calm', async () => {
    const eu = deployment.region('eu');
    const bystander = await WsTestClient.connect(eu.wsUrl, { name: 'bystander' });
    const publisher = await WsTestClient.connect(eu.wsUrl, { name: 'publisher' });
    await bystander.join('shed-room');
    await publisher.join('shed-room');
    expect((await upgrade(eu.wsUrl)).status).toBe(101);

    const stopStalling = stallLoop(250, 300);
    let refused: Awaited<ReturnType<typeof upgrade>> | undefined;
    try {
      const deadline = Date.now() + 5000;
      while (!refused && Date.now() < deadline) {
        const outcome = await upgrade(eu.wsUrl);
        if (outcome.status !== 101) refused = outcome;
      }
      // Open connections go on while arrivals are shed.
      const acked = await publisher.publish('note.add', 'shed-room', { text: 'while shedding' });
      expect(acked).toMatchObject({ seq: expect.any(Number) });
      expect((await bystander.waitForEvents('shed-room', 1)).map((event) => event.data)).toEqual([{ text: 'while shedding' }]);
    } finally {
      stopStalling();
    }
    expect(refused).toEqual({
      status: 503,
      retryAfter: '1',
      body: { code: 'UNAVAILABLE', message: expect.stringMatching(/^this server is overloaded \(event loop delay \d+ ms, limit 150 ms\)/) },
    });

    let admitted = false;
    const deadline = Date.now() + 5000;
    while (!admitted && Date.now() < deadline) admitted = (await upgrade(eu.wsUrl)).status === 101;
    expect(admitted).toBe(true);
    expect([bystander.isOpen, publisher.isOpen]).toEqual([true, true]);
    bystander.close();
    publisher.close();
  });
});
