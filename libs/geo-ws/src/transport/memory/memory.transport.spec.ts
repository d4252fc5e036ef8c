import { afterEach, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { describeTransportContract } from '../../testing/transport-contract.js';
import { globalLog } from '../log-ref.js';
import { GeoMemoryNetwork } from './memory-network.js';
import { memoryTransport, type MemoryTransport } from './memory.transport.js';

describeTransportContract('memory', {
  newCluster: () => ({ transport: memoryTransport({ network: new GeoMemoryNetwork() }) }),
  gapFreeSeq: true,
  roomHomes: true,
});

// Given the framework's functions (as a Vitest suite without globals does), not its globals.
describeTransportContract('memory with 30 ms between regions', {
  newCluster: () => ({ transport: memoryTransport({ network: new GeoMemoryNetwork({ delayMs: 30 }) }) }),
  gapFreeSeq: true,
  roomHomes: true,
  testApi: { describe, it, expect, afterEach },
});

describeTransportContract('memory with every log in one home region', {
  newCluster: () => ({ transport: memoryTransport({ network: new GeoMemoryNetwork({ home: 'eu', delayMs: 5 }) }) }),
  gapFreeSeq: true,
  testApi: { describe, it, expect, afterEach },
});

describe('memory transport: rooms only read leave nothing behind', () => {
  const context = { region: 'eu', regions: ['eu'], dedupWindowMs: 120_000, retention: { maxEvents: 100, maxAgeMs: 3_600_000 } };
  const draft = (room: string) => ({
    event_id: randomUUID(),
    room_id: room,
    type: 't.e',
    sender: 's',
    timestamp: new Date().toISOString(),
    region: 'eu',
    data: null,
  });
  const held = (network: GeoMemoryNetwork) => (network as unknown as { logs: Map<string, unknown> }).logs.size;

  it('1,000 rooms read and tailed, then left, hold no log; a room that got an event keeps it and its epoch', async () => {
    const network = new GeoMemoryNetwork();
    const transport = memoryTransport({ network })(context) as MemoryTransport;
    await transport.connect();
    const epochs = new Map<string, string>();
    for (let n = 0; n < 1000; n++) {
      const log = globalLog(`room-${n}`);
      epochs.set(log.room, (await transport.head(log)).epoch);
      const tail = await transport.tail(log, 0, () => undefined);
      await tail.close();
    }
    expect(held(network)).toBe(0);
    const published = globalLog('room-7');
    const first = await transport.append(published, draft('room-7'));
    expect(first).toMatchObject({ seq: 1, epoch: epochs.get('room-7') });
    expect(held(network)).toBe(1);
    await transport.deleteLog(globalLog('room-8'));
    expect((await transport.head(globalLog('room-8'))).epoch).not.toBe(epochs.get('room-8'));
    await transport.close();
  });
});
