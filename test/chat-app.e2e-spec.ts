import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { GeoMemoryNetwork, memoryTransport } from '@geo-ws/nest';
import { startRegion } from '../apps/chat/src/bootstrap.js';
import { readRegionConfig } from '../apps/chat/src/config.js';
import { freePort } from '../apps/lab/src/topology/free-port.js';
import { demoToken } from './support/demo-token.js';
import { WsTestClient } from './support/ws-test-client.js';

/** The sample chat app as `npm start` runs it: one Nest app per region in one process. */
describe('sample chat app across regions', () => {
  const apps: INestApplication[] = [];
  const clients: WsTestClient[] = [];
  let urls: Record<string, string>;

  beforeAll(async () => {
    const ports = [await freePort(), await freePort()];
    const env = { GEO_REGIONS: `eu=http://127.0.0.1:${ports[0]},us=http://127.0.0.1:${ports[1]}`, GEO_QUIET: '1', GEO_DRAIN_GRACE_MS: '0' };
    const network = new GeoMemoryNetwork({ delayMs: 20 });
    for (const region of ['eu', 'us'])
      apps.push(await startRegion(readRegionConfig({ ...env, REGION: region }), memoryTransport({ network })));
    urls = { eu: `ws://127.0.0.1:${ports[0]}/ws`, us: `ws://127.0.0.1:${ports[1]}/ws`, euHttp: `http://127.0.0.1:${ports[0]}` };
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    await Promise.allSettled(apps.map((app) => app.close()));
  });

  const connect = async (region: 'eu' | 'us', name: string) => {
    const client = await WsTestClient.connect(urls[region], { token: await demoToken(urls.euHttp, name) });
    clients.push(client);
    return client;
  };

  it('serves the browser page and the region directory', async () => {
    const page = await fetch(`${urls.euHttp}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script type="module" src="app.js">');
    const directory = (await (await fetch(`${urls.euHttp}/geo/regions`)).json()) as { regions: { name: string }[] };
    expect(directory.regions.map((region: { name: string }) => region.name)).toEqual(['eu', 'us']);
  });

  it('a message sent in eu reaches us with the sender, origin region and seq; text is trimmed', async () => {
    const ana = await connect('eu', 'ana');
    const ben = await connect('us', 'ben');
    await ana.join('lobby');
    await ben.join('lobby');
    const ack = await ana.publish('chat.message', 'lobby', { text: '  hola  ' });
    expect(ack.seq).toBe(1);
    const [message] = await ben.waitForEvents('lobby', 1);
    expect(message).toMatchObject({ type: 'chat.message', sender: 'ana', region: 'eu', seq: 1, data: { text: 'hola' } });
  });

  it('refuses empty, oversized or extra-field messages with VALIDATION_FAILED', async () => {
    const eve = await connect('eu', 'eve');
    await eve.join('lobby-2');
    expect(await eve.publish('chat.message', 'lobby-2', { text: '   ' })).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(await eve.publish('chat.message', 'lobby-2', { text: 'x'.repeat(501) })).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(await eve.publish('chat.message', 'lobby-2', { text: 'hi', html: '<b>' })).toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('typing indicators cross regions without entering the log', async () => {
    const ana = await connect('eu', 'typist');
    const ben = await connect('us', 'watcher');
    await ana.join('typing-room');
    await ben.join('typing-room');
    expect(await ana.publish('chat.typing', 'typing-room', {})).toMatchObject({ seq: null });
    const typing = await ben.next('chat.typing');
    expect(typing).toMatchObject({ sender: 'typist', region: 'eu', seq: null, data: {} });
  });

  it('the demo token authority: one token for every region; bad names and missing tokens are refused', async () => {
    const token = await demoToken(urls.euHttp, 'traveller');
    for (const region of ['eu', 'us'] as const) {
      const client = await WsTestClient.connect(urls[region], { token });
      expect(client.frames[0].data).toMatchObject({ sender: 'traveller', region, expires_at: expect.stringMatching(/Z$/) });
      client.close();
    }
    await expect(demoToken(urls.euHttp, 'not a valid name!')).rejects.toThrow('HTTP 400');
    await expect(WsTestClient.connect(urls.eu, { name: 'no-token' })).rejects.toThrow('HTTP 401');
  });
});
