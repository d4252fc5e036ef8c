import { afterEach, describe, expect, it } from '@jest/globals';
import { LoopDelayGate } from './loop-delay-gate.js';

/**
 * Keeps the event loop busy for `ms`, as a herd of handshakes would, once the gate has
 * watched it for a while (a delay is measured between two of its ticks).
 */
async function block(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 50));
  const until = Date.now() + ms;
  while (Date.now() < until);
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

describe('LoopDelayGate', () => {
  let gate: LoopDelayGate | undefined;
  afterEach(() => gate?.stop());

  it('refuses arrivals after a window whose loop delay passed the limit, naming it, and admits again once a window is calm', async () => {
    gate = new LoopDelayGate(200, 100);
    gate.start();
    expect(gate.refusal()).toBeUndefined();
    await block(450);
    expect(await waitUntil(() => gate!.refusal() !== undefined, 1000)).toBe(true);
    expect(gate.refusal()).toMatch(
      /^this server is overloaded \(event loop delay \d+ ms, limit 200 ms\); retry shortly or try another region$/,
    );
    expect(await waitUntil(() => gate!.refusal() === undefined, 3000)).toBe(true);
  });

  it('is off at 0: a stalled loop refuses nothing', async () => {
    gate = new LoopDelayGate(0, 100);
    gate.start();
    await block(450);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(gate.refusal()).toBeUndefined();
  });

  it('admits everything once stopped, even right after a stall', async () => {
    gate = new LoopDelayGate(200, 100);
    gate.start();
    await block(450);
    expect(await waitUntil(() => gate!.refusal() !== undefined, 1000)).toBe(true);
    gate.stop();
    expect(gate.refusal()).toBeUndefined();
  });
});
