import { describe, expect, it } from '@jest/globals';
import type { RttProbe } from '../geo-client-options.js';
import { rankRegions } from './nearest-region.js';
import type { GeoRegion } from '../protocol.js';

const regions: GeoRegion[] = ['asia', 'eu', 'us'].map((name) => ({ name, url: `http://${name}`, wsUrl: `ws://${name}/ws` }));

/** A probe answering from a script of RTTs per region (a throw for a down region). */
function scripted(rtts: Record<string, (number | 'down')[]>): RttProbe {
  const calls: Record<string, number> = {};
  return async (region) => {
    const index = (calls[region.name] = (calls[region.name] ?? -1) + 1);
    const value = rtts[region.name][index % rtts[region.name].length];
    if (value === 'down') throw new Error('down');
    return value;
  };
}

describe('rankRegions', () => {
  it('orders by median RTT, so one slow sample does not demote a near region', async () => {
    const ranked = await rankRegions(regions, scripted({ asia: [180, 190, 185], eu: [12, 400, 14], us: [80, 85, 90] }));
    expect(ranked.map((region) => [region.name, region.rttMs])).toEqual([
      ['eu', 14],
      ['us', 85],
      ['asia', 185],
    ]);
  });

  it('puts regions that fail most probes last, as down', async () => {
    const ranked = await rankRegions(regions, scripted({ asia: [30, 30, 30], eu: ['down', 5, 'down'], us: [60, 'down', 61] }));
    expect(ranked.map((region) => region.name)).toEqual(['asia', 'us', 'eu']);
    expect(ranked[2].rttMs).toBe(Infinity);
  });

  it('honours a pinned region or a caller-given order', async () => {
    const probe = scripted({ asia: [1], eu: [2], us: [3] });
    expect((await rankRegions(regions, probe, { pin: 'us' })).map((region) => region.name)).toEqual(['us']);
    expect((await rankRegions(regions, probe, { order: ['us', 'asia'] })).map((region) => region.name)).toEqual(['us', 'asia', 'eu']);
    await expect(rankRegions(regions, probe, { pin: 'mars' })).rejects.toThrow('pinned region "mars" is not in the directory');
  });
});
