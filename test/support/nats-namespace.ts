import { randomUUID } from 'node:crypto';

// One clean-up for the e2e suites and the library's integration specs.
export { dropNatsNamespace } from '../../libs/geo-ws/src/testing/broker-namespaces.js';

/** A fresh namespace per test file, so runs on a shared NATS never see each other's rooms. */
export function testNamespace(prefix: string): string {
  return `${prefix}${randomUUID().slice(0, 6)}`.toLowerCase();
}
