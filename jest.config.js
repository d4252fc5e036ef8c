/** Jest in ESM mode (Nest 12 is ESM-only): ts-jest transpiles, `tsc` type-checks separately. */
const esm = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }] },
  moduleNameMapper: {
    '^@geo-ws/nest$': '<rootDir>/libs/geo-ws/src/index.ts',
    '^@geo-ws/nest/testing$': '<rootDir>/libs/geo-ws/src/testing/index.ts',
    '^@geo-ws/client$': '<rootDir>/libs/geo-ws-client/src/index.ts',
    '^@geo-ws/nest/microservices$': '<rootDir>/libs/geo-ws/src/microservices/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
};

export default {
  // Per-test limit for the e2e suites, which start servers and wait on real networks.
  testTimeout: 30_000,
  projects: [
    { ...esm, displayName: 'unit', rootDir: '.', testMatch: ['<rootDir>/libs/**/src/**/*.spec.ts', '<rootDir>/apps/**/src/**/*.spec.ts'] },
    { ...esm, displayName: 'e2e', rootDir: '.', testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'] },
  ],
};
