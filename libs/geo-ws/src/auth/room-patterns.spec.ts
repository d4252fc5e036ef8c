import { describe, expect, it } from '@jest/globals';
import { roomAllowed } from './room-patterns.js';

describe('roomAllowed', () => {
  it('allows every room without patterns, exact ids, and prefixes ending in *', () => {
    expect(roomAllowed(undefined, 'anything')).toBe(true);
    expect(roomAllowed(['lobby', 'team.*'], 'lobby')).toBe(true);
    expect(roomAllowed(['lobby', 'team.*'], 'team.eu')).toBe(true);
    expect(roomAllowed(['lobby', 'team.*'], 'team.')).toBe(true);
  });

  it('grants nothing wider than a pattern: no other wildcard, no partial match', () => {
    expect(roomAllowed([], 'lobby')).toBe(false);
    expect(roomAllowed(['lobby'], 'lobby2')).toBe(false);
    expect(roomAllowed(['team.*'], 'team')).toBe(false);
    expect(roomAllowed(['te*m'], 'team')).toBe(false);
    expect(roomAllowed(['team.>'], 'team.eu')).toBe(false);
  });
});
