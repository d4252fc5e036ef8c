import { describe, expect, it } from '@jest/globals';
import type { GeoClientOptions } from '../geo-client-options.js';
import type { GeoRegion } from '../protocol.js';
import type { RankedRegion } from './nearest-region.js';
import { RegionList } from './region-list.js';

const region = (name: string): GeoRegion => ({ name, url: `http://${name}.test`, wsUrl: `ws://${name}.test/ws` });
const rtts: Record<string, number> = { eu: 10, us: 20, asia: 30 };

/** The ranking the dialer walks, with a probe that answers at once. */
describe('RegionList', () => {
  const list = (options: Partial<GeoClientOptions> = {}, lifetime = new AbortController().signal): RegionList =>
    new RegionList({ regions: [], probe: async (probed) => rtts[probed.name], probeSamples: 1, ...options }, lifetime);
  const names = (regions: readonly RankedRegion[]) => regions.map((ranked) => ranked.name);

  it('ranks nearest first, or as regionOrder says; use() keeps the current region where it is', async () => {
    const regions = list();
    regions.use(await regions.rank([region('asia'), region('us'), region('eu')]));
    expect([names(regions.ranked), regions.current.name]).toEqual([['eu', 'us', 'asia'], 'eu']);
    regions.select(regions.indexOf('us'));
    regions.use([...regions.ranked].reverse(), 'us');
    expect(regions.current.name).toBe('us');
    regions.use([...regions.ranked], 'mars');
    expect(regions.current.name).toBe('asia'); // unknown: the first
    const ordered = list({ regionOrder: ['us', 'asia', 'eu'] });
    expect(names(await ordered.rank([region('eu'), region('us'), region('asia')]))).toEqual(['us', 'asia', 'eu']);
  });

  it('failOver(): the next region now; the others re-ranked in the background, the failed one last', async () => {
    const regions = list();
    regions.use(await regions.rank([region('eu'), region('us'), region('asia')]));
    regions.failOver();
    expect(regions.current.name).toBe('us');
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect([names(regions.ranked), regions.current.name]).toEqual([['us', 'asia', 'eu'], 'us']);
    for (let i = 0; i < 3; i++) regions.failOver();
    expect(regions.current.name).toBe('us'); // round the ranking
  });

  it('a fixed order is not re-ranked; nor is anything after close()', async () => {
    const fixed = list({ regionOrder: ['eu', 'us'] });
    fixed.use(await fixed.rank([region('eu'), region('us')]));
    fixed.failOver();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(names(fixed.ranked)).toEqual(['eu', 'us']);
    const lifetime = new AbortController();
    const closing = list({}, lifetime.signal);
    closing.use(await closing.rank([region('eu'), region('us')]));
    closing.failOver();
    lifetime.abort();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(names(closing.ranked)).toEqual(['eu', 'us']);
  });

  it("drain(): to the nearest other region; the server's suggestion only when none is known, and for one attempt", async () => {
    const regions = list();
    regions.use(await regions.rank([region('eu'), region('us')]));
    regions.drain('eu', 'ws://elsewhere.test/ws');
    expect(regions.takeUrl().href).toBe('ws://us.test/ws');
    const single = list();
    single.use(await single.rank([region('eu')]));
    single.drain('eu', 'ws://elsewhere.test/ws');
    expect([single.takeUrl().href, single.takeUrl().href]).toEqual(['ws://elsewhere.test/ws', 'ws://eu.test/ws']);
  });
});
