/** Jest in ESM mode (Nest 12 is ESM-only): ts-jest transpiles, `tsc` type-checks separately. */
const esm = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }] },
  moduleNameMapper: {
    '^@geo-ws/nest$': '<rootDir>/libs/geo-ws/src/index.ts',
    '^@geo-ws/nest/testing$': '<rootDir>/libs/geo-ws/src/testing/index.ts',
    '^@geo-ws/client$': '<rootDir>/libs/geo-ws-client/src/index.ts',
    '^@geo-ws/client/msgpack$': '<rootDir>/libs/geo-ws-client/src/msgpack.ts',
    '^@geo-ws/nest/microservices$': '<rootDir>/libs/geo-ws/src/microservices/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
};

/**
 * Specs beside the code that need a running broker (NATS on 127.0.0.1:4222, Redis on
 * 127.0.0.1:6379, or GEO_NATS_URL / GEO_REDIS_URL): `*.int.spec.ts`. Still `*.spec.ts`,
 * so the library build leaves them out and the lint rules for specs apply to them.
 */
const INTEGRATION_SPEC = '\\.int\\.spec\\.ts$';

export default {
  // Per-test limit for the e2e suites, which start servers and wait on real networks.
  testTimeout: 30_000,
  // `jest` with no --selectProjects (npm test) runs all three.
  projects: [
    // No broker, no server: pure logic, fakes and the in-memory transport.
    {
      ...esm,
      displayName: 'unit',
      rootDir: '.',
      testMatch: ['<rootDir>/libs/**/src/**/*.spec.ts', '<rootDir>/apps/**/src/**/*.spec.ts'],
      testPathIgnorePatterns: ['/node_modules/', INTEGRATION_SPEC],
    },
    // Library specs against the real brokers (the transport contract on NATS and Redis).
    {
      ...esm,
      displayName: 'integration',
      rootDir: '.',
      testMatch: ['<rootDir>/libs/**/src/**/*.int.spec.ts', '<rootDir>/apps/**/src/**/*.int.spec.ts'],
    },
    // Apps, region processes and broker topologies started by the tests themselves.
    { ...esm, displayName: 'e2e', rootDir: '.', testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'] },
  ],
};
