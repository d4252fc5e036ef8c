import { describe, expect, it } from '@jest/globals';
import { TokenBucket } from '../limits/token-bucket.js';
import type { JoinRequest } from '../protocol/frames.js';
import { isJoinBatchFrame, paidRooms, runJoinBatch, type JoinSteps } from './join-batch.js';

const requests = (count: number): JoinRequest[] => Array.from({ length: count }, (_, i) => ({ room: `r${i}` }));

/** Steps whose joins wait until the test settles them, recording what ran when. */
function controlledSteps(failing: Set<string> = new Set()) {
  const pending = new Map<string, () => void>();
  const refused: [string, string][] = [];
  let running = 0;
  let maxRunning = 0;
  let stopped = false;
  const steps: JoinSteps = {
    join: (request) =>
      new Promise<void>((resolve, reject) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        pending.set(request.room, () => {
          running--;
          if (failing.has(request.room)) reject(Object.assign(new Error('no'), { code: 'FORBIDDEN' }));
          else resolve();
        });
      }),
    refuse: (request, error) => refused.push([request.room, (error as { code: string }).code]),
    stopped: () => stopped,
  };
  return {
    steps,
    refused,
    pending,
    maxRunning: () => maxRunning,
    stop: () => (stopped = true),
    /** Settles every join started so far, then lets the runner start the next ones. */
    settleAll: async () => {
      for (const [room, settle] of [...pending]) {
        pending.delete(room);
        settle();
      }
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

describe('join batches', () => {
  it('recognises only geo.join { rooms }', () => {
    expect(isJoinBatchFrame({ event: 'geo.join', data: { rooms: [] } })).toBe(true);
    expect(isJoinBatchFrame({ event: 'geo.join', data: { room: 'r' } })).toBe(false);
    expect(isJoinBatchFrame({ event: 'chat.message', data: { rooms: [] } })).toBe(false);
  });

  it('pay one token per room: the frame pays the first, the bucket the rest, as far as it goes', () => {
    const bucket = new TokenBucket({ perSecond: 1, burst: 10 });
    bucket.take(); // the frame's own token, as onMessage takes it
    expect(paidRooms(new Array(4).fill({}), true, bucket, 100)).toBe(4); // 3 more taken: 6 left
    expect(paidRooms(new Array(20).fill({}), true, bucket, 100)).toBe(7); // 1 + the 6 left
    expect(paidRooms(new Array(3).fill({}), false, bucket, 100)).toBe(0); // the frame itself was over the rate
    const fresh = new TokenBucket({ perSecond: 1, burst: 10 });
    expect(paidRooms(new Array(101).fill({}), true, fresh, 100)).toBe(1); // refused whole: costs its own token only
    expect(paidRooms('nope', true, fresh, 100)).toBe(1);
    expect(fresh.takeUpTo(100)).toBe(10);
  });

  it('joins at most `concurrency` rooms at a time, in list order, and resolves only once every room is answered', async () => {
    const control = controlledSteps(new Set(['r3']));
    let done = false;
    const running = runJoinBatch(requests(10), 10, control.steps, 4).then(() => (done = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect([...control.pending.keys()]).toEqual(['r0', 'r1', 'r2', 'r3']);
    await control.settleAll();
    expect([...control.pending.keys()]).toEqual(['r4', 'r5', 'r6', 'r7']);
    expect(done).toBe(false);
    await control.settleAll();
    await control.settleAll();
    await running;
    expect(control.maxRunning()).toBe(4);
    expect(control.refused).toEqual([['r3', 'FORBIDDEN']]); // one room refused, the others joined
  });

  it('refuses the rooms it was not paid for RATE_LIMITED, each by name, and joins the rest', async () => {
    const control = controlledSteps();
    const running = runJoinBatch(requests(5), 2, control.steps);
    expect(control.refused).toEqual([
      ['r2', 'RATE_LIMITED'],
      ['r3', 'RATE_LIMITED'],
      ['r4', 'RATE_LIMITED'],
    ]);
    await new Promise((resolve) => setImmediate(resolve));
    expect([...control.pending.keys()]).toEqual(['r0', 'r1']);
    await control.settleAll();
    await running;
  });

  it('starts no more rooms once the connection closed', async () => {
    const control = controlledSteps();
    const running = runJoinBatch(requests(6), 6, control.steps, 2);
    await new Promise((resolve) => setImmediate(resolve));
    control.stop();
    await control.settleAll();
    await running;
    expect(control.pending.size).toBe(0);
    expect(control.maxRunning()).toBe(2);
  });
});
