import { afterEach, describe, expect, it } from '@jest/globals';
import { WebSocket } from 'ws';
import { GeoClient } from '../geo-client.js';
import { FakeRegion, until } from '../testing/index.js';

/** The connection's in-band token refresh (moved from dialer/geo-client.connection.spec.ts), against fake regions. */
describe('GeoClient connection (fake regions over a real WebSocket)', () => {
  const fakes: FakeRegion[] = [];

  const region = async (name: string): Promise<FakeRegion> => {
    const fake = await FakeRegion.start({ name });
    fakes.push(fake);
    return fake;
  };

  afterEach(async () => {
    await Promise.all(fakes.splice(0).map((fake) => fake.close()));
  });

  describe('token refresh (geo.auth)', () => {
    it('a token function is called at 80% of the lifetime in geo.welcome and the new token sent with geo.auth; a failure is reported as error', async () => {
      const [good, bad] = [await region('good'), await region('bad')];
      for (const fake of [good, bad]) fake.welcome = () => ({ expires_at: new Date(Date.now() + 1250).toISOString() });
      let issued = 0;
      const [refreshing, failing] = await Promise.all([
        GeoClient.connect({
          regions: good.regions,
          WebSocket,
          probe: async () => 1,
          heartbeatMs: 60_000,
          token: () => `t${++issued}`,
        }),
        GeoClient.connect({
          regions: bad.regions,
          WebSocket,
          probe: async () => 1,
          heartbeatMs: 60_000,
          token: () => (bad.connections.length === 0 ? 'first' : Promise.reject(new Error('revoked'))),
        }),
      ]);
      try {
        const errors: string[] = [];
        failing.on('error', (error) => errors.push(`${error.code}: ${error.message}`));
        await until(() => good.refreshedTokens.length === 1 && errors.length === 1, 'the refreshes', 2500);
        expect(good.refreshedTokens).toEqual(['t2']);
        expect(good.connections).toHaveLength(1); // in-band: no reconnect
        expect(errors).toEqual(['UNAUTHORIZED: token refresh failed: revoked']);
        expect(bad.refreshedTokens).toEqual([]);
      } finally {
        refreshing.close();
        failing.close();
      }
    });
  });
});
