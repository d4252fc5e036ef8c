import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { memoryTransport, natsTransport, type GeoTransportFactory, type GeoMemoryNetwork } from '@geo-ws/nest';
import { dropNatsNamespace, testNamespace } from './support/nats-namespace.js';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

const servers = process.env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222';
const namespace = testNamespace('presence');

const transports: [string, (region: string, network: GeoMemoryNetwork) => GeoTransportFactory][] = [
  ['memory', (_region, network) => memoryTransport({ network })],
  ['nats', () => natsTransport({ servers, namespace })],
];

describe.each(transports)('presence across regions (%s)', (_name, transport) => {
  let deployment: Deployment;

  beforeAll(async () => {
    deployment = await deployRegions(['eu', 'us'], { transport, geo: { presence: { ttlMs: 1500 } } });
  });

  afterAll(async () => {
    await deployment.close();
    if (_name === 'nats') await dropNatsNamespace(servers, namespace);
  });

  const presence = async (region: string, room: string) => {
    const response = await fetch(`${deployment.region(region).url}/geo/presence/${encodeURIComponent(room)}`);
    return ((await response.json()) as { members: { sender: string; region: string }[] }).members
      .map((member) => `${member.sender}@${member.region}`)
      .sort();
  };

  it('lists members of every region, drops them on leave and close', async () => {
    const room = `team.${randomUUID().slice(0, 6)}`;
    const ana = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'ana' });
    const ben = await WsTestClient.connect(deployment.region('us').wsUrl, { name: 'ben' });
    await ana.join(room);
    await ben.join(room);
    // Presence writes are asynchronous: poll briefly.
    let seen: string[] = [];
    for (let i = 0; i < 50 && seen.length < 2; i++) seen = await presence('eu', room);
    expect(seen).toEqual(['ana@eu', 'ben@us']);
    expect(await presence('us', room)).toEqual(['ana@eu', 'ben@us']);
    ben.send('geo.leave', { room });
    await ben.next('geo.left');
    ana.close();
    for (let i = 0; i < 50 && seen.length > 0; i++) seen = await presence('us', room);
    expect(seen).toEqual([]);
    ben.close();
  });

  it('keeps members present with heartbeats beyond one TTL', async () => {
    const room = `beat.${randomUUID().slice(0, 6)}`;
    const cam = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'cam' });
    await cam.join(room);
    await new Promise((resolve) => setTimeout(resolve, 3000)); // two TTLs
    expect(await presence('us', room)).toEqual(['cam@eu']);
    cam.close();
  });
});

describe('presence off', () => {
  it('answers 404 with how to turn it on', async () => {
    const deployment = await deployRegions(['eu']);
    try {
      const response = await fetch(`${deployment.region('eu').url}/geo/presence/lobby`);
      expect(response.status).toBe(404);
      expect(JSON.stringify(await response.json())).toContain('presence: true');
    } finally {
      await deployment.close();
    }
  });
});
