import { randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { describeTransportContract } from '../../testing/transport-contract.js';
import { dropNatsNamespace } from '../../testing/broker-namespaces.js';
import { describe, expect, it } from '@jest/globals';
import { GeoConfigError } from '../../errors/geo-config.error.js';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import type { GeoLogRef } from '../log-ref.js';
import { loadNats } from './load-nats.js';
import { NatsNames, type NatsRoomHome } from './nats-names.js';
import { NatsPublisher } from './nats-publisher.js';
import { natsTransport, type NatsTransport } from './nats.transport.js';

const servers = process.env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222';

// Four times: rooms tailed through a consumer each, every stream read through one
// consumer, and each room's log in its home region's stream (roomHomes), read live from
// each region's mirror of it, or from the home stream through one consumer per stream.
for (const [mode, sharedTailFrom, roomHomes, mirrors] of [
  ['a consumer per room', Number.POSITIVE_INFINITY, false, false],
  ['one consumer per stream', 1, false, false],
  ['room homes, live events from mirrors', 64, true, true],
  ['room homes, one consumer per stream', 1, true, false],
] as const)
  describeTransportContract(`nats (JetStream at ${servers}), ${mode}`, {
    roomHomes,
    newCluster: () => {
      const namespace = `t${randomUUID().slice(0, 8)}`;
      return {
        transport: natsTransport({ servers, namespace, sharedTailFrom, roomHomes, mirrors }),
        dispose: () => dropNatsNamespace(servers, namespace),
        // The log's stream deleted and created again with the same configuration, as after a
        // server lost its store and an app set the stream up again.
        loseLog: async (log: GeoLogRef) => {
          const nc = await connect({ servers });
          try {
            const jsm = await jetstreamManager(nc);
            const names = new NatsNames(namespace);
            const home = roomHomes ? await homeOf(nc, names, log) : undefined;
            const name = names.stream(home ? { ...log, home } : log);
            const { config } = await jsm.streams.info(name);
            await jsm.streams.delete(name);
            await jsm.streams.add(config);
          } finally {
            await nc.close();
          }
        },
      };
    },
  });

/** The home a room's record names (roomHomes), read as the transport writes it. */
async function homeOf(nc: Awaited<ReturnType<typeof connect>>, names: NatsNames, log: GeoLogRef): Promise<NatsRoomHome | undefined> {
  const { Kvm } = await import('@nats-io/kv');
  const bucket = await new Kvm(nc).open(names.kv.homes);
  const entry = await bucket.get(names.logKey(log));
  return entry?.operation === 'PUT' ? entry.json<NatsRoomHome>() : undefined;
}

const waitUntil = async (done: () => boolean, ms = 5000) => {
  for (const until = Date.now() + ms; !done() && Date.now() < until;) await new Promise((resolve) => setTimeout(resolve, 20));
};

describe('NATS transport specifics', () => {
  const context = { region: 'eu', regions: ['eu'], dedupWindowMs: 120_000, retention: { maxEvents: 100, maxAgeMs: 3_600_000 } };
  const draftIn = (room: string) => ({
    event_id: randomUUID(),
    room_id: room,
    type: 't.e',
    sender: 's',
    timestamp: new Date().toISOString(),
    region: 'eu',
    data: null,
  });

  it('a recreated stream is a new epoch, so no client resumes old positions against new history', async () => {
    const namespace = `t${randomUUID().slice(0, 8)}`;
    const log = { room: 'lobby', scope: 'global' } as const;
    const draft = () => ({
      event_id: randomUUID(),
      room_id: 'lobby',
      type: 't.e',
      sender: 's',
      timestamp: new Date().toISOString(),
      region: 'eu',
      data: null,
    });
    const before = natsTransport({ servers, namespace })(context) as NatsTransport;
    await before.connect();
    const old = await before.append(log, draft());
    await before.close();
    await dropNatsNamespace(servers, namespace);
    const after = natsTransport({ servers, namespace })(context) as NatsTransport;
    try {
      await after.connect();
      const fresh = await after.append(log, draft());
      expect(fresh.epoch).not.toBe(old.epoch);
      expect((await after.head(log)).epoch).toBe(fresh.epoch);
    } finally {
      await after.close();
      await dropNatsNamespace(servers, namespace);
    }
  });

  it('refuses to run a namespace with roomHomes other than its apps do (one room would get two logs)', async () => {
    const log = { room: 'lobby', scope: 'global' } as const;
    for (const [first, second, says] of [
      [true, false, 'set roomHomes: true, as its apps do'],
      [false, true, 'written without roomHomes (stream GEOWS_'],
    ] as const) {
      const namespace = `t${randomUUID().slice(0, 8)}`;
      const running = natsTransport({ servers, namespace, roomHomes: first })(context) as NatsTransport;
      try {
        await running.connect();
        await running.append(log, draftIn('lobby'));
        const other = natsTransport({ servers, namespace, roomHomes: second })(context) as NatsTransport;
        const refused = await other.connect().then(
          () => undefined,
          (error: unknown) => error,
        );
        await other.close();
        expect(refused).toBeInstanceOf(GeoConfigError);
        expect((refused as Error).message).toContain(says);
        // The same setting joins it, including a side service that only verifies.
        const same = natsTransport({ servers, namespace, roomHomes: first, setup: 'verify' })(context) as NatsTransport;
        await same.connect();
        expect((await same.read(log, 0, 10)).events).toHaveLength(1);
        await same.close();
      } finally {
        await running.close();
        await dropNatsNamespace(servers, namespace);
      }
    }
  });

  describe('moves (roomHomes)', () => {
    const regions = { ...context, regions: ['eu', 'us'] };
    const withHomes = async (use: (transport: NatsTransport, namespace: string) => Promise<void>) => {
      const namespace = `t${randomUUID().slice(0, 8)}`;
      const transport = natsTransport({ servers, namespace, roomHomes: true })(regions) as NatsTransport;
      try {
        await transport.connect();
        await use(transport, namespace);
      } finally {
        await transport.close();
        await dropNatsNamespace(servers, namespace);
      }
    };
    const kv = async (nc: Awaited<ReturnType<typeof connect>>, namespace: string) => {
      const { Kvm } = await import('@nats-io/kv');
      return new Kvm(nc).open(new NatsNames(namespace).kv.homes);
    };

    it('a move left half done by a mover that died is finished by the next append; nothing is lost', async () => {
      await withHomes(async (transport, namespace) => {
        const log = { room: 'orphan', scope: 'global' } as const;
        const first = await transport.append(log, draftIn('orphan'));
        // A mover recorded the move long ago and died before sealing.
        const nc = await connect({ servers });
        try {
          const bucket = await kv(nc, namespace);
          const key = new NatsNames(namespace).logKey(log);
          const entry = (await bucket.get(key))!;
          const stale: NatsRoomHome = { ...entry.json<NatsRoomHome>(), moving: { to: 'us', since: Date.now() - 60_000 } };
          await bucket.update(key, JSON.stringify(stale), entry.revision);
        } finally {
          await nc.close();
        }
        await waitUntil(() => false, 300); // the watcher hands the record to the cache
        const second = await transport.append(log, draftIn('orphan'));
        expect(second.seq).toBeGreaterThan(first.seq);
        expect(second.epoch).toBe(first.epoch);
        expect(await transport.home('orphan')).toMatchObject({ region: 'us', term: 2 });
        expect((await transport.read(log, 0, 10)).events.map((event) => event.seq)).toEqual([first.seq, second.seq]);
      });
    });

    it("what a late append left after a segment's seal is not the room's: reads and tails skip it", async () => {
      await withHomes(async (transport, namespace) => {
        const log = { room: 'sealed', scope: 'global' } as const;
        const names = new NatsNames(namespace);
        const before = await transport.append(log, draftIn('sealed'));
        const sealed = (await transport.home('sealed')).region!;
        await transport.move('sealed', 'us');
        // An append acked after the seal, as an instance with a stale cache would make it.
        const nc = await connect({ servers });
        try {
          const nats = await loadNats();
          const headers = nats.core.headers();
          headers.set('Nats-Msg-Id', `late-${randomUUID()}`);
          const home: NatsRoomHome = { region: sealed, term: 1, generation: 0, incarnation: '', startSeq: 0 };
          const js = (await import('@nats-io/jetstream')).jetstream(nc);
          await js.publish(names.subject({ ...log, home }), JSON.stringify(draftIn('sealed')), { headers });
        } finally {
          await nc.close();
        }
        const after = await transport.append(log, draftIn('sealed'));
        const read = await transport.read(log, 0, 10);
        expect(read.events.map((event) => event.seq)).toEqual([before.seq, after.seq]);
        const seen: number[] = [];
        const tail = await transport.tail(log, 0, (event) => seen.push(event.seq));
        await waitUntil(() => seen.length >= 2);
        await new Promise((resolve) => setTimeout(resolve, 200));
        await tail.close();
        expect(seen).toEqual([before.seq, after.seq]);
      });
    });
  });

  it("appends made back to back, none waiting for an ack, are stored in the order they were made (a log's first ones too)", async () => {
    const namespace = `t${randomUUID().slice(0, 8)}`;
    const transport = natsTransport({ servers, namespace })(context) as NatsTransport;
    try {
      await transport.connect();
      for (const room of ['fresh', 'fresh']) {
        // The first round opens the log (its epoch and incarnation are looked up while
        // later appends queue); the second goes out at once, pipelined.
        const log = { room, scope: 'global' } as const;
        const ids = Array.from({ length: 40 }, () => randomUUID());
        const results = await Promise.all(ids.map((event_id) => transport.append(log, { ...draftIn(room), event_id })));
        const seqs = results.map((result) => result.seq);
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
        expect(new Set(seqs).size).toBe(ids.length);
        const stored = await transport.read(log, seqs[0] - 1, 100);
        expect(stored.events.map((event) => event.event_id)).toEqual(ids);
      }
      // Another instance, caches cold: its first append looks the log up; a read meanwhile
      // fills the caches, and an append made after it must still not overtake the first.
      const other = natsTransport({ servers, namespace })(context) as NatsTransport;
      try {
        await other.connect();
        const log = { room: 'fresh', scope: 'global' } as const;
        const first = other.append(log, draftIn('fresh'));
        await other.head(log);
        const second = other.append(log, draftIn('fresh'));
        expect((await first).seq).toBeLessThan((await second).seq);
      } finally {
        await other.close();
      }
    } finally {
      await transport.close();
      await dropNatsNamespace(servers, namespace);
    }
  });

  it('tails move onto one consumer per stream as rooms pass sharedTailFrom, while events flow: none lost, none twice, in order', async () => {
    const namespace = `t${randomUUID().slice(0, 8)}`;
    const keepAll = { ...context, retention: { maxEvents: 100_000, maxAgeMs: 3_600_000 } };
    const writer = natsTransport({ servers, namespace })(keepAll) as NatsTransport;
    const reader = natsTransport({ servers, namespace, sharedTailFrom: 3 })(keepAll) as NatsTransport;
    try {
      await writer.connect();
      await reader.connect();
      const rooms = ['r0', 'r1', 'r2', 'r3', 'r4'];
      const logs = rooms.map((room) => ({ room, scope: 'global' }) as const);
      for (const log of logs) await writer.append(log, draftIn(log.room));
      let writing = true;
      const written = (async () => {
        for (let n = 0; writing; n++) {
          await Promise.all(logs.map((log) => writer.append(log, draftIn(log.room))));
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      // Tails open one after another while events flow: the first two read through their
      // own consumers, the third moves all onto the stream's consumer; two tails of r0.
      const received = new Map<string, number[]>();
      const tails = [];
      for (const [i, log] of [...logs, logs[0]].entries()) {
        const seqs: number[] = [];
        received.set(`${log.room}#${i}`, seqs);
        tails.push(
          await reader.tail(
            log,
            1,
            (event) => seqs.push(event.seq),
            (error) => seqs.push(-1, error.message.length),
          ),
        );
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      writing = false;
      await written;
      for (const [name, seqs] of received) {
        const log = logs[rooms.indexOf(name.split('#')[0])];
        const stored = (await writer.read(log, 1, 10_000)).events.map((event) => event.seq);
        await waitUntil(() => seqs.length >= stored.length);
        expect({ name, seqs }).toEqual({ name, seqs: stored });
      }
      // The last tails of the stream closed: its consumer goes; a new tail reads on.
      for (const tail of tails) await tail.close();
      const again: number[] = [];
      const last = (await writer.head(logs[1])).lastSeq;
      const tail = await reader.tail(logs[1], last, (event) => again.push(event.seq));
      const { seq } = await writer.append(logs[1], draftIn('r1'));
      await waitUntil(() => again.length > 0);
      expect(again).toEqual([seq]);
      await tail.close();
    } finally {
      await reader.close();
      await writer.close();
      await dropNatsNamespace(servers, namespace);
    }
  });

  it('a publish no stream takes, or one never answered, fails as unavailable (retryable), not as a bug', async () => {
    const nats = await loadNats();
    const nc = await nats.core.connect({ servers });
    const silent = nc.subscribe(`silent.${randomUUID()}`); // takes the message, never answers
    const publisher = new NatsPublisher(nats, nc, 300);
    try {
      const started = Date.now();
      await expect(publisher.publish(`nowhere.${randomUUID()}`, '{}', nats.core.headers())).rejects.toThrow(/no responders/);
      await expect(publisher.publish(silent.getSubject(), '{}', nats.core.headers())).rejects.toBeInstanceOf(GeoTransportUnavailableError);
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      publisher.close();
      await expect(publisher.publish(silent.getSubject(), '{}', nats.core.headers())).rejects.toBeInstanceOf(GeoTransportUnavailableError);
    } finally {
      publisher.close();
      await nc.close();
    }
  });

  it('a configuration the server refuses fails the boot at once with a GeoConfigError that names the fix', async () => {
    const namespace = `t${randomUUID().slice(0, 8)}`;
    const transport = natsTransport({ servers, namespace, replicas: 3 })(context) as NatsTransport;
    try {
      const started = Date.now();
      const error = await transport.connect().catch((reason: unknown) => reason);
      expect(error).toBeInstanceOf(GeoConfigError);
      expect((error as Error).message).toMatch(/set replicas to 1 or cluster the servers/);
      expect(Date.now() - started).toBeLessThan(5000); // not retried as if the cluster were still forming
    } finally {
      await transport.close();
      await dropNatsNamespace(servers, namespace);
    }
  });

  describe('G3 once retention removed what a resume needs', () => {
    /** Connected transports of one fresh namespace, each with its own caches (as separate processes). */
    const instances = async (regions: string[], retention: { maxEvents: number; maxAgeMs: number }) => {
      const namespace = `t${randomUUID().slice(0, 8)}`;
      const transports = regions.map(
        (region) =>
          natsTransport({ servers, namespace })({
            region,
            regions: ['eu', 'us'],
            dedupWindowMs: Math.min(120_000, retention.maxAgeMs / 2),
            retention,
          }) as NatsTransport,
      );
      for (const transport of transports) await transport.connect();
      return {
        namespace,
        transports,
        close: async () => {
          await Promise.all(transports.map((transport) => transport.close()));
          await dropNatsNamespace(servers, namespace);
        },
      };
    };

    it('two regions append the first event of a room at once and maxEvents trims the earlier one: a member that joined the empty room is told', async () => {
      const { transports, close } = await instances(['eu', 'us', 'eu'], { maxEvents: 1, maxAgeMs: 3_600_000 });
      const [eu, us, reader] = transports;
      try {
        // Several rooms, each opened by both regions at the same moment: neither instance has
        // seen the room, each looks it up and (most of the time) finds it empty.
        const logs = ['r0', 'r1', 'r2', 'r3', 'r4'].map((room) => ({ room, scope: 'global' }) as const);
        const joined = await Promise.all(logs.map((log) => reader.head(log)));
        const appended = await Promise.all(
          logs.map((log) => Promise.all([eu.append(log, draftIn(log.room)), us.append(log, draftIn(log.room))])),
        );
        for (const [i, log] of logs.entries()) {
          const later = Math.max(...appended[i].map((result) => result.seq));
          const read = await reader.read(log, joined[i].lastSeq, 100);
          expect({ room: log.room, truncated: read.truncated, seqs: read.events.map((event) => event.seq) }).toEqual({
            room: log.room,
            truncated: true,
            seqs: [later],
          });
        }
        // A room with one event and a member that joined it empty: nothing was removed, nothing is reported.
        const bystander = { room: 'bystander', scope: 'global' } as const;
        const joinedBystander = await reader.head(bystander);
        const only = await eu.append(bystander, draftIn(bystander.room));
        const resumed = await reader.read(bystander, joinedBystander.lastSeq, 100);
        expect({ truncated: resumed.truncated, seqs: resumed.events.map((event) => event.seq) }).toEqual({
          truncated: false,
          seqs: [only.seq],
        });
      } finally {
        await close();
      }
    });

    it('a first-event marker (Geo-First) left by an earlier version after every event aged out does not make a resume complete', async () => {
      const { namespace, transports, close } = await instances(['eu'], { maxEvents: 1000, maxAgeMs: 1000 });
      const [transport] = transports;
      try {
        const log = { room: 'marked', scope: 'global' } as const;
        const old: number[] = [];
        for (let i = 0; i < 3; i++) old.push((await transport.append(log, draftIn(log.room))).seq);
        await new Promise((resolve) => setTimeout(resolve, 2500));
        // What an instance of an earlier version appended to a room it found empty.
        const nc = await connect({ servers });
        try {
          const headers = (await loadNats()).core.headers();
          headers.set('Geo-Epoch', '0');
          headers.set('Geo-First', '1');
          await (
            await jetstreamManager(nc)
          )
            .jetstream()
            .publish(new NatsNames(namespace).subject(log), JSON.stringify(draftIn(log.room)), { headers });
        } finally {
          await nc.close();
        }
        for (const since of [0, old[0], old[1]])
          expect({ since, truncated: (await transport.read(log, since, 100)).truncated }).toEqual({ since, truncated: true });
      } finally {
        await close();
      }
    });
  });

  it('fails with a clear message when the server is unreachable', async () => {
    const transport = await natsTransport({
      servers: 'nats://127.0.0.1:1',
      namespace: 'unreachable',
      connection: { maxReconnectAttempts: 0, timeout: 500 },
    })(context);
    await expect(transport.connect()).rejects.toThrow(/cannot reach NATS/);
    await expect(transport.connect()).rejects.toBeInstanceOf(GeoTransportUnavailableError);
    expect(transport.isReady()).toBe(false);
  });
});
