import { describe, expect, it } from '@jest/globals';
import { checkRegions } from './regions.js';

describe('checkRegions', () => {
  it('derives wsUrl from url as the server does (ws: or wss:, the path, + /ws), keeps a given wsUrl, drops a trailing slash of url', () => {
    expect(
      checkRegions(
        [
          { name: 'eu', url: 'https://eu.chat.example' },
          { name: 'us', url: 'http://us.chat.example:8080/chat/' },
          { name: 'asia', url: 'https://asia.chat.example/', wsUrl: 'wss://ws.asia.chat.example/socket' },
        ],
        'regions',
      ),
    ).toEqual([
      { name: 'eu', url: 'https://eu.chat.example', wsUrl: 'wss://eu.chat.example/ws' },
      { name: 'us', url: 'http://us.chat.example:8080/chat', wsUrl: 'ws://us.chat.example:8080/chat/ws' },
      { name: 'asia', url: 'https://asia.chat.example', wsUrl: 'wss://ws.asia.chat.example/socket' },
    ]);
  });

  it('names the source of a bad entry: the option, or the directory it was read from', () => {
    expect(() => checkRegions([{ name: 'eu', url: 42 }], 'https://eu.chat.example/geo/regions')).toThrow(
      'GeoClient: https://eu.chat.example/geo/regions[0] ("eu").url must be an absolute http: or https: URL such as "https://eu.example.com" (probes and the directory use it), got 42',
    );
  });
});
