// Test support for the client's specs; not part of the package (excluded from its build).
export { FakeLogs } from './fake-logs.js';
export { FakeRegion, type Answer, type FakeConnection, type JoinRequest, type Received } from './fake-region.js';
export { TEST_CLIENT_OPTIONS, activeTimers, sleep, testEnvelope, until, within } from './helpers.js';
export { MemorySocket, memorySockets } from './memory-socket.js';
export { startMuteHost } from './mute-host.js';
