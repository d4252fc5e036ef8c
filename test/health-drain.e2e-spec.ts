import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

describe('health, directory and graceful drain', () => {
  let deployment: Deployment;

  beforeAll(async () => {
    deployment = await deployRegions(['asia', 'eu', 'us'], { geo: { drainGraceMs: 1500, heartbeatMs: 200 } });
  });

  afterAll(async () => {
    await deployment.close();
  });

  it('GET /healthz answers with the region; /geo/regions lists the directory with ws URLs and open CORS', async () => {
    const eu = deployment.region('eu');
    const health = await fetch(`${eu.url}/healthz`);
    expect(await health.json()).toEqual({ status: 'ok', region: 'eu' });
    const directory = await fetch(`${eu.url}/geo/regions`);
    expect(directory.headers.get('access-control-allow-origin')).toBe('*');
    expect(await directory.json()).toEqual({
      region: 'eu',
      regions: deployment.regions.map((region) => ({ name: region.name, url: region.url, wsUrl: region.wsUrl })),
    });
  });

  it('GET /readyz is 200 while the transport is connected, 503 while the region is cut off from the log', async () => {
    const us = deployment.region('us');
    const ready = await fetch(`${us.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, region: 'us', draining: false });
    deployment.network.isolate('us');
    try {
      const cut = await fetch(`${us.url}/readyz`);
      expect(cut.status).toBe(503);
      expect(await cut.json()).toMatchObject({ ready: false });
    } finally {
      deployment.network.heal('us');
    }
  });

  it('while the log is unreachable a publish fails fast with the retryable UNAVAILABLE; the same event_id after recovery is stored once', async () => {
    const us = deployment.region('us');
    const client = await WsTestClient.connect(us.wsUrl, { name: 'outage' });
    await client.join('outage-room');
    deployment.network.isolate('us');
    const failed = await client.publish('note.add', 'outage-room', { text: 'during' }, 'outage-event-1');
    expect(failed).toMatchObject({ code: 'UNAVAILABLE', event_id: 'outage-event-1' });
    deployment.network.heal('us');
    const retried = await client.publish('note.add', 'outage-room', { text: 'during' }, 'outage-event-1');
    expect(retried).toMatchObject({ seq: 1 });
    await client.waitForEvents('outage-room', 1);
    client.close();
  });

  it('heartbeat: a client that stops answering pings is dropped; one that answers stays', async () => {
    const eu = deployment.region('eu');
    const mute = await WsTestClient.connect(eu.wsUrl, { name: 'mute', autoPong: false });
    const alive = await WsTestClient.connect(eu.wsUrl, { name: 'alive' });
    const before = eu.server.connectionCount;
    expect(await mute.waitForClose(2000)).toBe(1006); // terminated without a close frame
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(alive.isOpen).toBe(true);
    expect(eu.server.connectionCount).toBe(before - 1);
    alive.close();
  });

  it('answers geo.ping with geo.pong carrying the same data', async () => {
    const client = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'pinger' });
    client.send('geo.ping', { t: 42 });
    expect(await client.next('geo.pong')).toEqual({ t: 42 });
    client.close();
  });

  it('on shutdown the region drains: /readyz goes 503, clients get geo.reconnect to another region, then close 1012', async () => {
    const asia = deployment.region('asia');
    const clients = await Promise.all([1, 2, 3].map((n) => WsTestClient.connect(asia.wsUrl, { name: `drained-${n}` })));
    const closing = asia.app.close();
    for (const client of clients) {
      expect(await client.next('geo.reconnect')).toEqual({ region: 'eu', url: deployment.region('eu').wsUrl });
    }
    const readiness = await fetch(`${asia.url}/readyz`);
    expect(readiness.status).toBe(503);
    expect(await readiness.json()).toMatchObject({ draining: true });
    // One client moves on its own; the others are closed with 1012 after the grace period.
    clients[0].close();
    expect(await clients[1].waitForClose()).toBe(1012);
    expect(await clients[2].waitForClose()).toBe(1012);
    await closing;
  });
});
