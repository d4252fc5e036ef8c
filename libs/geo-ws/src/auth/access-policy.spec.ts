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

const settle = () => new Promise((resolve) => setImmediate(resolve));

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

  it('joins and publishes never wait for the list: a stale answer is re-read in the background, at most once per recheck period', async () => {
    const list = revocationList();
    const policy = new AccessPolicy('eu', list.state, 50);
    await policy.assertNotRevoked(alice); // the handshake's read
    for (let i = 0; i < 1000; i++) policy.assertMayUse(alice, 'lobby');
    expect(list.reads).toBe(1); // fresh: no read for 1,000 frames
    list.revoked.add('jti-alice');
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(() => policy.assertMayUse(alice, 'lobby')).not.toThrow(); // stale: this frame passes and starts one read
    for (let i = 0; i < 100; i++) policy.assertMayUse(alice, 'lobby');
    expect(list.reads).toBe(2);
    await settle();
    expect(() => policy.assertMayUse(alice, 'lobby', 'e1')).toThrow(
      expect.objectContaining({ code: 'UNAUTHORIZED', message: 'the token was revoked', eventId: 'e1' }),
    );
  });

  it('a critical revalidation or a refused geo.auth is remembered at once', async () => {
    const list = revocationList();
    const policy = new AccessPolicy('eu', list.state, 60_000);
    await policy.assertNotRevoked(alice);
    list.revoked.add('jti-alice');
    policy.assertMayUse(alice, 'vault'); // still the handshake's answer
    await expect(policy.revalidate(alice, 'e2')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect(() => policy.assertMayUse(alice, 'vault')).toThrow('the token was revoked');
  });

  it('an unreadable list keeps the last answer and is tried again after the recheck period, not on every frame', async () => {
    const list = revocationList();
    const policy = new AccessPolicy('eu', list.state, 30);
    policy.assertMayUse(alice, 'lobby'); // never read: starts a read
    await settle();
    list.failing = true;
    await new Promise((resolve) => setTimeout(resolve, 40));
    for (let i = 0; i < 100; i++) policy.assertMayUse(alice, 'lobby');
    await settle();
    expect(list.reads).toBe(2);
    for (let i = 0; i < 100; i++) policy.assertMayUse(alice, 'lobby');
    expect(list.reads).toBe(2);
  });

  it('still enforces the region and rooms claims', () => {
    const policy = new AccessPolicy('eu', revocationList().state);
    expect(() => policy.assertMayUse({ id: 'a', regions: ['us'] }, 'lobby')).toThrow(expect.objectContaining({ code: 'FORBIDDEN' }));
    expect(() => policy.assertMayUse({ id: 'a', rooms: ['team.*'] }, 'lobby')).toThrow(expect.objectContaining({ code: 'FORBIDDEN' }));
    expect(() => policy.assertMayUse({ id: 'a', rooms: ['team.*'] }, 'team.eu')).not.toThrow();
  });
});
