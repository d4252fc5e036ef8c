import { describe, expect, it } from '@jest/globals';
import type { GeoStateStore } from '../transport/geo-state-store.interface.js';
import { AccessPolicy } from './access-policy.js';

/** A revocation list that counts its reads and can be made to fail. */
function revocationList() {
  const revoked = new Set<string>();
  const list = {
    reads: 0,
    failing: false,
    revoked,
    state: {
      isRevoked: (tokenId: string) => {
        list.reads++;
        return list.failing ? Promise.reject(new Error('broker down')) : Promise.resolve(revoked.has(tokenId));
      },
    } as unknown as GeoStateStore,
  };
  return list;
}

describe('AccessPolicy: revocation at the handshake, on geo.auth, and for joins and publishes', () => {
  const alice = { id: 'alice', tokenId: 'jti-alice' };

  it('assertNotRevoked reads the list each time (handshake, geo.auth) and refuses a revoked token with UNAUTHORIZED', async () => {
    const list = revocationList();
    const policy = new AccessPolicy('eu', list.state);
    await expect(policy.assertNotRevoked(alice)).resolves.toBeUndefined();
    list.revoked.add('jti-alice');
    await expect(policy.assertNotRevoked(alice)).rejects.toMatchObject({ code: 'UNAUTHORIZED', message: 'the token was revoked' });
    expect(list.reads).toBe(2);
  });

  it('fails closed when the list cannot be read (UNAVAILABLE); principals without a storable token id are not looked up', async () => {
    const list = revocationList();
    const policy = new AccessPolicy('eu', list.state);
    list.failing = true;
    await expect(policy.assertNotRevoked(alice)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(policy.assertNotRevoked({ id: 'custom', tokenId: 'has spaces: not a state id' })).resolves.toBeUndefined();
    await expect(policy.assertNotRevoked({ id: 'anonymous' })).resolves.toBeUndefined();
    expect(list.reads).toBe(1);
  });

  it('a fresh answer is not read again: 1,000 frames after the handshake cost no read and do not wait', async () => {
    const list = revocationList();
    const policy = new AccessPolicy('eu', list.state, 60_000);
    await policy.assertNotRevoked(alice); // the handshake's read
    for (let i = 0; i < 1000; i++) expect(policy.assertMayUse(alice, 'lobby')).toBeUndefined();
    expect(list.reads).toBe(1);
  });

  it('the idle hole: the first frames after the recheck period wait for one read, shared by every frame of the token meanwhile, and are judged on it', async () => {
    const list = revocationList();
    const policy = new AccessPolicy('eu', list.state, 50);
    await policy.assertNotRevoked(alice);
    list.revoked.add('jti-alice'); // revoked elsewhere; no word of it reached this instance
    await new Promise((resolve) => setTimeout(resolve, 60)); // silence past the recheck period
    const burst = Array.from({ length: 90 }, (_, i) => Promise.resolve(policy.assertMayUse(alice, 'lobby', `e${i}`)));
    const outcomes = await Promise.allSettled(burst);
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(0);
    expect(outcomes[0]).toEqual({
      status: 'rejected',
      reason: expect.objectContaining({ code: 'UNAUTHORIZED', message: 'the token was revoked', eventId: 'e0' }),
    });
    expect(list.reads).toBe(2); // the handshake's, and one for the whole burst
    expect(() => policy.assertMayUse(alice, 'lobby2')).toThrow('the token was revoked'); // remembered: no wait, no read
    expect(list.reads).toBe(2);
  });

  it('a token in steady use never waits: a frame near the end of the period reads again in the background, and a revocation found there applies to the next frame', async () => {
    const list = revocationList();
    const policy = new AccessPolicy('eu', list.state, 100); // reads again from 50 ms (refresh ahead: half the period)
    await policy.assertNotRevoked(alice);
    for (let i = 0; i < 12; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20)); // a publisher every 20 ms, 240 ms in all
      expect(policy.assertMayUse(alice, 'lobby', `e${i}`)).toBeUndefined(); // judged at once, never a promise
    }
    expect(list.reads).toBeGreaterThanOrEqual(3); // the handshake's, then about one per 50-100 ms of use
    // Revoked elsewhere: a background read started by a frame finds it, and a later frame is refused at once.
    list.revoked.add('jti-alice');
    const revokedAt = Date.now();
    let refused: unknown;
    while (refused === undefined && Date.now() - revokedAt < 1000) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      try {
        expect(policy.assertMayUse(alice, 'lobby', 'after')).toBeUndefined();
      } catch (error) {
        refused = error;
      }
    }
    // Refused within a second (the period is 100 ms), and no frame before it waited.
    expect(refused).toMatchObject({ code: 'UNAUTHORIZED', message: 'the token was revoked' });
  });

  it('markRevoked (revoke() on this instance, the revocation channel) applies to the next frame at once, and tells onRevoked once', async () => {
    const list = revocationList();
    const told: string[] = [];
    const policy = new AccessPolicy('eu', list.state, 60_000, (tokenId) => told.push(tokenId));
    await policy.assertNotRevoked(alice);
    policy.markRevoked('jti-alice');
    policy.markRevoked('jti-alice');
    expect(() => policy.assertMayUse(alice, 'vault')).toThrow('the token was revoked');
    expect(told).toEqual(['jti-alice']);
    // A read that answers "not revoked" after it (it started before the revocation) does not undo it.
    list.revoked.clear();
    await expect(policy.revalidate(alice, 'e1')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect(() => policy.assertMayUse(alice, 'vault')).toThrow('the token was revoked');
  });

  it('a read that finds a token revoked (a frame, a critical action, a handshake, a recheck) tells onRevoked', async () => {
    const list = revocationList();
    const told: string[] = [];
    const policy = new AccessPolicy('eu', list.state, 60_000, (tokenId) => told.push(tokenId));
    await policy.assertNotRevoked(alice);
    list.revoked.add('jti-alice');
    await expect(policy.recheck(['jti-alice', 'jti-bob'])).resolves.toBeUndefined();
    expect(told).toEqual(['jti-alice']);
    expect(list.reads).toBe(3);
  });

  it('a critical revalidation or a refused geo.auth is remembered at once', async () => {
    const list = revocationList();
    const policy = new AccessPolicy('eu', list.state, 60_000);
    await policy.assertNotRevoked(alice);
    list.revoked.add('jti-alice');
    expect(policy.assertMayUse(alice, 'vault')).toBeUndefined(); // still the handshake's answer
    await expect(policy.revalidate(alice, 'e2')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect(() => policy.assertMayUse(alice, 'vault')).toThrow('the token was revoked');
  });

  it('an unreadable list keeps the last answer and is tried again after the recheck period, not on every frame', async () => {
    const list = revocationList();
    // A period the frames below cannot outlast on a loaded machine: past half of it a frame
    // would start the next read ahead (a third read, counted below).
    const policy = new AccessPolicy('eu', list.state, 400);
    await policy.assertMayUse(alice, 'lobby'); // never read: this frame waits for the first read
    expect(list.reads).toBe(1);
    list.failing = true;
    await new Promise((resolve) => setTimeout(resolve, 420));
    await Promise.all(Array.from({ length: 100 }, () => Promise.resolve(policy.assertMayUse(alice, 'lobby')))); // one failed read, the last answer kept
    expect(list.reads).toBe(2);
    for (let i = 0; i < 100; i++) expect(policy.assertMayUse(alice, 'lobby')).toBeUndefined();
    expect(list.reads).toBe(2);
  });

  it('still enforces the region and rooms claims', () => {
    const policy = new AccessPolicy('eu', revocationList().state);
    expect(() => policy.assertMayUse({ id: 'a', regions: ['us'] }, 'lobby')).toThrow(expect.objectContaining({ code: 'FORBIDDEN' }));
    expect(() => policy.assertMayUse({ id: 'a', rooms: ['team.*'] }, 'lobby')).toThrow(expect.objectContaining({ code: 'FORBIDDEN' }));
    expect(() => policy.assertMayUse({ id: 'a', rooms: ['team.*'] }, 'team.eu')).not.toThrow();
  });
});
