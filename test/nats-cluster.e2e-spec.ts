import { afterAll, describe, expect, it } from '@jest/globals';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { existsSync } from 'node:fs';
import { startSingleNode, startStretchedCluster, startSupercluster, type NatsTopology } from '../apps/lab/src/topology/nats-cluster.js';

/** Proves the nats-server test harness: real JetStream on throwaway supercluster / stretched / single topologies. */

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Retry `attempt` until it succeeds or `timeoutMs` passes (e.g. while a stream leader is elected). */
async function retry<T>(what: string, attempt: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await attempt();
    } catch (error) {
      last = error;
      await sleep(250);
    }
  }
  throw new Error(`${what} did not succeed within ${timeoutMs} ms: ${String(last)}`);
}

function expectDead(pid: number | undefined): void {
  expect(pid).toBeDefined();
  expect(() => process.kill(pid!, 0)).toThrow();
}

const topologies: NatsTopology[] = [];
const connections: NatsConnection[] = [];
async function open(url: string): Promise<NatsConnection> {
  // Pin to one server: no reconnecting elsewhere, so a test really exercises that node.
  const nc = await connect({ servers: url, reconnect: false, ignoreClusterUpdates: true, timeout: 5_000 });
  connections.push(nc);
  return nc;
}

afterAll(async () => {
  await Promise.allSettled(connections.map((nc) => nc.close()));
  await Promise.allSettled(topologies.map((topology) => topology.stop()));
});

describe('nats-cluster test support (nats-server 2.9.x)', () => {
  it('supercluster: stream placed in eu, published from asia, read from us; stop() leaves nothing running', async () => {
    const sc = await startSupercluster();
    topologies.push(sc);
    expect(sc.kind).toBe('supercluster');
    expect(sc.nodes.map((node) => node.name)).toEqual(['n-asia', 'n-eu', 'n-us']);
    expect(sc.nodes.every((node) => node.running && node.pid !== undefined)).toBe(true);

    const eu = await open(sc.node('eu').clientUrl);
    const jsmEu = await jetstreamManager(eu);
    const info = await jsmEu.streams.add({
      name: 'SC_TEST',
      subjects: ['sc.test.>'],
      placement: { cluster: 'eu', tags: [] },
      allow_direct: true,
    });
    expect(info.cluster?.name).toBe('eu');
    expect(info.cluster?.leader).toBe('n-eu');

    // JetStream publish from another cluster: the stream's interest crosses the gateway.
    const asia = await open(sc.node('asia').clientUrl);
    const jsAsia = jetstream(asia);
    for (let i = 1; i <= 3; i++) {
      const ack = await jsAsia.publish(`sc.test.${i}`, `hello ${i}`, { msgID: `sc-${i}` });
      expect(ack).toMatchObject({ stream: 'SC_TEST', seq: i, duplicate: false });
    }

    // Read back from the third cluster.
    const us = await open(sc.node('us').clientUrl);
    const jsmUs = await jetstreamManager(us);
    for (let seq = 1; seq <= 3; seq++) {
      const message = await jsmUs.direct.getMessage('SC_TEST', { seq });
      expect(message?.subject).toBe(`sc.test.${seq}`);
      expect(message?.string()).toBe(`hello ${seq}`);
    }
    expect((await jsmUs.streams.info('SC_TEST')).state.messages).toBe(3);

    const pids = sc.nodes.map((node) => node.pid);
    await Promise.all([asia.close(), eu.close(), us.close()]);
    await sc.stop();
    await sc.stop(); // idempotent
    for (const pid of pids) expectDead(pid);
    expect(sc.nodes.every((node) => !node.running)).toBe(true);
    expect(existsSync(sc.dir)).toBe(false);
  }, 60_000);

  it('stretched: an R3 stream keeps accepting writes when its leader node is killed, and the node rejoins', async () => {
    const geo = await startStretchedCluster();
    topologies.push(geo);
    expect(geo.kind).toBe('stretched');

    const first = await open(geo.node('eu').clientUrl);
    const jsm = await jetstreamManager(first);
    const created = await jsm.streams.add({ name: 'GEO_R3', subjects: ['geo.r3.>'], num_replicas: 3 });
    expect(created.config.num_replicas).toBe(3);
    // All three regions carry a replica (leader + two followers).
    await retry('replicas current', async () => {
      const { cluster } = await jsm.streams.info('GEO_R3');
      const servers = [cluster?.leader, ...(cluster?.replicas ?? []).filter((r) => r.current).map((r) => r.name)];
      expect(servers.sort()).toEqual(['n-asia', 'n-eu', 'n-us']);
    });

    const publishAll = async (jsm: JetStreamManager, from: number, to: number) => {
      const js = jsm.jetstream();
      for (let i = from; i <= to; i++) {
        // msgID makes retries idempotent if an ack was lost during a leader change.
        await retry(`publish ${i}`, () => js.publish(`geo.r3.${i}`, `m${i}`, { msgID: `geo-${i}`, timeout: 2_000 }));
      }
    };
    await publishAll(jsm, 1, 10);

    // Kill whichever node leads the stream, so a new leader must be elected.
    const leaderName = (await jsm.streams.info('GEO_R3')).cluster!.leader!;
    const victim = geo.nodes.find((node) => node.name === leaderName)!;
    const survivor = geo.nodes.find((node) => node !== victim)!;
    // Connect before the kill: jetstreamManager() asks for account info, which times out while
    // the meta leader (often the same node as the stream leader) is being re-elected.
    const other = await open(survivor.clientUrl);
    const jsmSurvivor = await jetstreamManager(other);
    const victimPid = victim.pid;
    await geo.kill(victim.region);
    expect(victim.running).toBe(false);
    expectDead(victimPid);

    await publishAll(jsmSurvivor, 11, 20);
    await retry('20 messages after failover', async () => {
      const info = await jsmSurvivor.streams.info('GEO_R3');
      expect(info.state.messages).toBe(20);
      expect(info.cluster?.leader).not.toBe(victim.name);
    });

    await geo.restart(victim.region);
    expect(victim.running).toBe(true);
    expect(victim.pid).not.toBe(victimPid);
    // The restarted node serves JetStream and sees the whole stream again.
    const back = await open(victim.clientUrl);
    const jsmBack = await retry('jetstreamManager on restarted node', () => jetstreamManager(back));
    await retry('restarted node sees 20 messages', async () => {
      expect((await jsmBack.streams.info('GEO_R3')).state.messages).toBe(20);
    });

    const pids = geo.nodes.map((node) => node.pid);
    await Promise.all([first.close(), other.close(), back.close()]);
    await geo.stop();
    for (const pid of pids) expectDead(pid);
  }, 60_000);

  it('single node: a standalone JetStream broker keeps its port and store across kill + restart', async () => {
    const single = await startSingleNode();
    topologies.push(single);
    const [node] = single.nodes;
    expect(single.nodes).toHaveLength(1);
    expect(node.port).not.toBe(4222);

    const nc = await open(node.clientUrl);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'ONE', subjects: ['one.>'] });
    await jsm.jetstream().publish('one.a', 'x', { msgID: 'one-1' });
    await nc.close();

    const before = node.pid;
    await single.kill(node.region);
    expectDead(before);
    await single.restart(node.region);
    expect(node.clientUrl).toBe(`nats://127.0.0.1:${node.port}`);

    const again = await open(node.clientUrl);
    expect((await (await jetstreamManager(again)).streams.info('ONE')).state.messages).toBe(1);
    await again.close();

    const pid = node.pid;
    await single.stop();
    expectDead(pid);
  }, 60_000);
});
