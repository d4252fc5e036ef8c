import { describe, expect, it } from '@jest/globals';

describe('@geo-ws/client public surface', () => {
  it('exports what apps use, no internals (frame encoding, backoff, ranking, wire names)', async () => {
    const api = await import('./index.js');
    expect(Object.keys(api).sort()).toEqual([
      'GeoClient',
      'GeoClientCloseCode',
      'GeoClientError',
      'GeoCloseCode',
      'httpProbe',
      'jsonCodec',
      'newEventId',
    ]);
  });

  it('@geo-ws/client/msgpack exports the MessagePack codec alone (the core never imports msgpackr)', async () => {
    expect(Object.keys(await import('./msgpack.js'))).toEqual(['msgpackCodec']);
  });
});
