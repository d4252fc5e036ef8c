import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { redisTransport } from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';
import { RedisServer } from '../apps/lab/src/topology/redis-servers.js';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function redisCommand(server: RedisServer, ...command: [string, ...string[]]): Promise<unknown> {
  const client = new Redis(server.url);
  try {
    return await client.call(...command);
  } finally {
    client.disconnect();
  }
}

/**
 * A Redis primary restarted, in eu and us: an epoch (what a resume is checked against)
 * must change only when events may be gone, never on a restart that kept them all. Every
 * case has a member connected across the restart, a raw resume from seq 60 afterwards, and
 * a bystander in another room.
 */
describe('Redis primary restarted', () => {
  let server: RedisServer;
  let deployment: Deployment;
  const clients: WsTestClient[] = [];

  async function start(args: string[]): Promise<void> {
    server = await RedisServer.start(args, {}, { keepData: true });
    deployment = await deployRegions(['eu', 'us'], {
      transport: () => redisTransport({ primary: server.url, namespace: 'restart' }),
      geo: { limits: { rate: { perSecond: 1000, burst: 1000 } } },
    });
  }

  async function stop(): Promise<void> {
    for (const client of clients.splice(0)) client.close();
    await deployment?.close();
    await server?.stop();
  }

  async function connect(region: string, name: string): Promise<WsTestClient> {
    const client = await WsTestClient.connect(deployment.region(region).wsUrl, { name });
    clients.push(client);
    return client;
  }

  /** A room with a member in us and a writer in eu, 80 events in it, and a bystander in another room. */
  async function scene() {
    const room = `restart-${randomUUID().slice(0, 6)}`;
    const other = `bystander-${randomUUID().slice(0, 6)}`;
    const member = await connect('us', 'member');
    const { epoch } = await member.join(room);
    const writer = await connect('eu', 'writer');
    await writer.join(room);
    await writer.join(other);
    const bystander = await connect('us', 'bystander');
    await bystander.join(other);
    const publish = async (from: number, to: number) => {
      for (const n of range(from, to)) await writer.publishUntilAcked('note.add', room, { text: `note ${n}` });
    };
    return { room, other, member, writer, bystander, epoch, publish };
  }

  /** Joins, again after each UNAVAILABLE while the transports reconnect (as the SDK does). */
  async function joinWhenAvailable(client: WsTestClient, room: string, position: { since?: number; epoch?: string } = {}) {
    const isAnswer = (frame: { event: string; data: { room?: string; scope?: string } }) =>
      (frame.event === 'geo.joined' || frame.event === 'geo.error') && frame.data.room === room && !frame.data.scope;
    for (let attempt = 0; attempt < 50; attempt++) {
      // Each attempt reads only the frames that came after it was sent. A waiter left over
      // from a refused attempt (as with client.next) would take the next attempt's
      // geo.joined: the flake CI showed when the first rejoin after the restart was refused.
      const from = client.frames.length;
      client.send('geo.join', { room, ...position });
      await waitFor(() => client.frames.slice(from).some(isAnswer), `an answer to joining ${room}`, 20_000);
      const answer = client.frames.slice(from).find(isAnswer)!;
      if (answer.event === 'geo.joined') return answer.data as { room: string; seq: number; epoch: string; recovered: boolean };
      expect(answer.data).toMatchObject({ code: 'UNAVAILABLE' });
      await sleep(200);
    }
    throw new Error(`could not join ${room}`);
  }

  async function restart(): Promise<void> {
    await server.kill();
    await server.restart();
  }

  async function bystanderStillServed(writer: WsTestClient, bystander: WsTestClient, other: string): Promise<void> {
    await writer.publishUntilAcked('note.add', other, { text: 'for the bystander' });
    const events = await bystander.waitForEvents(other, 1);
    expect(events.map((event) => event.seq)).toEqual([1]);
  }

  describe.each([
    ['from an RDB snapshot taken after the last write (SAVE, then SIGKILL)', [], true],
    ['with AOF and appendfsync always (SIGKILL, no SAVE)', ['--appendonly', 'yes', '--appendfsync', 'always'], false],
  ])('with its data intact: %s', (_name, args, save) => {
    beforeAll(() => start(args), 30_000);
    afterAll(stop);

    it('keeps every epoch: members go on without a notice and a resume from seq 60 gets exactly 61..90', async () => {
      const { room, other, member, writer, bystander, epoch, publish } = await scene();
      await publish(1, 80);
      await member.waitForEvents(room, 80);
      if (save) await redisCommand(server, 'SAVE');

      await restart();
      await publish(81, 90);
      await member.waitForEvents(room, 90);
      expect(member.events(room).map((event) => event.seq)).toEqual(range(1, 90));
      expect(member.errors()).toEqual([]); // no "log was reset; join it again"
      expect(writer.errors().filter((error) => error.code !== 'UNAVAILABLE')).toEqual([]); // only retries while Redis was down

      // geo.joined says where eu's feed is: once its member there has 90, so has the feed.
      await writer.waitForEvents(room, 90);
      const resumer = await connect('eu', 'resumer');
      const joined = await resumer.join(room, { since: 60, epoch });
      expect(joined).toMatchObject({ recovered: true, epoch, seq: 90 });
      await resumer.waitForEvents(room, 30);
      await sleep(300); // nothing more may come
      expect(resumer.events(room).map((event) => event.seq)).toEqual(range(61, 90));
      await bystanderStillServed(writer, bystander, other);
    }, 60_000);
  });

  describe('from a snapshot older than its last acknowledged writes', () => {
    beforeAll(() => start([]), 30_000);
    afterAll(stop);

    it('changes the epoch: members are told before any event of the shorter log, and a resume says recovered: false', async () => {
      const { room, other, member, writer, bystander, epoch, publish } = await scene();
      await publish(1, 60);
      await redisCommand(server, 'SAVE');
      await publish(61, 80); // acknowledged, then lost with the restart
      await member.waitForEvents(room, 80);
      const framesBefore = member.frames.length;

      await restart();
      // The writer is told too (its room's log changed epoch): it joins again, then writes.
      await waitFor(() => writer.errors().some((error) => error.message.includes('join it again')), 'the writer to be told', 15_000);
      const rejoined = await joinWhenAvailable(writer, room, { since: 80, epoch });
      expect(rejoined.recovered).toBe(false);
      expect(rejoined.epoch).not.toBe(epoch);
      await joinWhenAvailable(writer, other);
      await writer.publishUntilAcked('note.add', room, { text: 'after the loss' });

      await waitFor(() => member.errors().length > 0, 'the member to be told', 15_000);
      const notice = member.frames.findIndex((frame, i) => i >= framesBefore && frame.event === 'geo.error');
      expect(member.frames[notice].data).toMatchObject({ code: 'UNAVAILABLE', room });
      // Nothing of the shorter log reached the member as if it followed the old one.
      expect(member.frames.slice(framesBefore, notice).filter((frame) => !frame.event.startsWith('geo.'))).toEqual([]);

      const resumer = await connect('eu', 'resumer');
      const resumed = await resumer.join(room, { since: 60, epoch });
      expect(resumed).toMatchObject({ recovered: false, epoch: rejoined.epoch });
      await joinWhenAvailable(bystander, other); // told as well: every epoch changed
      await bystanderStillServed(writer, bystander, other);
    }, 60_000);
  });
});
