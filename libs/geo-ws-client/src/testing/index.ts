// Test support for the client's specs; not part of the package (excluded from its build).
export { FakeLogs } from './fake-logs.js';
export { FakeRegion, type Answer, type FakeConnection, type JoinRequest, type Received } from './fake-region.js';
export { TEST_CLIENT_OPTIONS, sleep, stopWatchingTimers, testEnvelope, until, watchTimers, within } from './helpers.js';
export { MemorySocket, memorySockets } from './memory-socket.js';
export { startMuteHost } from './mute-host.js';
