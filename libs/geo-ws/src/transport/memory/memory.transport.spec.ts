import { describeTransportContract } from '../../testing/transport-contract.js';
import { MemoryNetwork } from './memory-network.js';
import { memoryTransport } from './memory.transport.js';

describeTransportContract('memory', {
  newCluster: () => ({ transport: memoryTransport({ network: new MemoryNetwork() }) }),
  gapFreeSeq: true,
});

describeTransportContract('memory with 30 ms between regions', {
  newCluster: () => ({ transport: memoryTransport({ network: new MemoryNetwork({ delayMs: 30 }) }) }),
  gapFreeSeq: true,
});
