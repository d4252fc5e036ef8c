import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import ts from 'typescript';

/** Reads a file of the library (this spec sits in src/). */
function source(path: string): string {
  return readFileSync(new URL(path, import.meta.url), 'utf8');
}

/** Every name an entry point exports, values and types, with whether it is type-only. */
function exportedNames(path: string): { name: string; typeOnly: boolean }[] {
  const file = ts.createSourceFile(path, source(path), ts.ScriptTarget.ES2022);
  const names: { name: string; typeOnly: boolean }[] = [];
  for (const statement of file.statements) {
    if (!ts.isExportDeclaration(statement)) continue;
    const clause = statement.exportClause;
    if (!clause || !ts.isNamedExports(clause)) throw new Error(`${path}: export * hides what is exported; name each export`);
    for (const element of clause.elements) names.push({ name: element.name.text, typeOnly: statement.isTypeOnly || element.isTypeOnly });
  }
  return names;
}

/** The names a file declares with `@deprecated`, and the JSDoc of each. */
function deprecatedNames(path: string): Map<string, string> {
  const text = source(path);
  const names = new Map<string, string>();
  for (const match of text.matchAll(/\/\*\*(.*?)\*\/\s*export (?:const|type) (\w+)/gs)) names.set(match[2], match[1]);
  return names;
}

/** The members of a class as its published declaration has them (the build's `stripInternal` applied). */
function publishedMembers(path: string, className: string): string[] {
  const build = JSON.parse(source('../tsconfig.build.json')) as { compilerOptions: ts.CompilerOptions };
  const declaration = ts.transpileDeclaration(source(path), {
    fileName: path,
    compilerOptions: { stripInternal: build.compilerOptions.stripInternal, experimentalDecorators: true },
  }).outputText;
  const file = ts.createSourceFile('out.d.ts', declaration, ts.ScriptTarget.ES2022);
  const declared = file.statements.find((statement) => ts.isClassDeclaration(statement) && statement.name?.text === className);
  if (!declared || !ts.isClassDeclaration(declared)) throw new Error(`${className} is not declared in ${path}`);
  return declared.members
    .filter((member) => member.name && !(ts.canHaveModifiers(member) && ts.getModifiers(member)?.some(isPrivate)))
    .map((member) => (member.name as ts.Identifier).text)
    .sort();
}

function isPrivate(modifier: ts.ModifierLike): boolean {
  return modifier.kind === ts.SyntaxKind.PrivateKeyword;
}

const DEPRECATED: readonly string[] = [
  'AppendResult',
  'ConnectedClient',
  'EventEnvelope',
  'EventPayload',
  'LogHead',
  'LogRef',
  'MemoryNetwork',
  'MemoryNetworkOptions',
  'MemoryTransportOptions',
  'NatsTransportOptions',
  'ReadResult',
  'RedisEndpoint',
  'RedisTransportOptions',
  'RevocationWatch',
  'Subscription',
];
const DEPRECATED_TESTING: readonly string[] = [
  'ContractAssertions',
  'ContractCluster',
  'ContractMatchers',
  'ContractTestApi',
  'TransportContractOptions',
];

describe('@geo-ws/nest public surface', () => {
  it('exports the module, handlers, errors, transports and the server, no internals (runtime values)', async () => {
    const api = await import('./index.js');
    expect(Object.keys(api).sort()).toEqual([
      'ConnectedClient',
      'EVENT_ID_PATTERN',
      'EVENT_TYPE_PATTERN',
      'EventEnvelope',
      'EventPayload',
      'GEO_MSGPACK_SUBPROTOCOL',
      'GEO_SUBPROTOCOL',
      'GeoCloseCode',
      'GeoConfigError',
      'GeoConnectedClient',
      'GeoErrorCode',
      'GeoEventEnvelope',
      'GeoEventPayload',
      'GeoFrame',
      'GeoMemoryNetwork',
      'GeoMetrics',
      'GeoProtocolError',
      'GeoSubscribe',
      'GeoTransport',
      'GeoTransportUnavailableError',
      'GeoUser',
      'GeoWsModule',
      'GeoWsServer',
      'MemoryNetwork',
      'RETRYABLE_ERROR_CODES',
      'ROOM_ID_PATTERN',
      'globalLog',
      'jwtAuthenticator',
      'memoryTransport',
      'natsTransport',
      'redisTransport',
      'regionalLog',
    ]);
  });

  it('@geo-ws/nest/testing exports the contract suite and waitFor; /microservices the transport, client and context', async () => {
    expect(Object.keys(await import('./testing/index.js')).sort()).toEqual(['describeTransportContract', 'waitFor']);
    expect(Object.keys(await import('./microservices/index.js')).sort()).toEqual(['GeoEventContext', 'GeoEventsClient', 'GeoEventsServer']);
  });

  it('names every exported type, class and decorator Geo*, apart from the deprecated old names', () => {
    const entries: [string, readonly string[]][] = [
      ['./index.ts', DEPRECATED],
      ['./testing/index.ts', DEPRECATED_TESTING],
      ['./microservices/index.ts', []],
    ];
    for (const [entry, deprecated] of entries) {
      const names = exportedNames(entry);
      const capitalised = names.map(({ name }) => name).filter((name) => /^[A-Z][a-z]/.test(name));
      expect({ entry, off: capitalised.filter((name) => !name.startsWith('Geo') && !deprecated.includes(name)) }).toEqual({
        entry,
        off: [],
      });
      // Factories are camelCase functions, constants UPPER_SNAKE: never types.
      const rest = names.filter(({ name }) => !/^[A-Z][a-z]/.test(name));
      expect(rest.filter(({ name, typeOnly }) => typeOnly || !/^([a-z][A-Za-z]*|[A-Z][A-Z0-9_]*)$/.test(name))).toEqual([]);
      expect(names.map(({ name }) => name).filter((name) => deprecated.includes(name))).toEqual(expect.arrayContaining([...deprecated]));
    }
  });

  it('keeps each old name as a deprecated alias of the new one, going away in 0.2.0', async () => {
    for (const [file, expected] of [
      ['./deprecated.ts', DEPRECATED],
      ['./testing/deprecated.ts', DEPRECATED_TESTING],
    ] as const) {
      const declared = deprecatedNames(file);
      expect([...new Set(declared.keys())].sort()).toEqual([...expected].sort());
      for (const [name, doc] of declared)
        expect(doc).toMatch(new RegExp(`@deprecated Renamed \\{@link Geo${name}\\}; \`${name}\` goes away in 0\\.2\\.0`));
    }
    const api = await import('./index.js');
    /* eslint-disable @typescript-eslint/no-deprecated -- what is checked here is the old names */
    expect(api.EventPayload).toBe(api.GeoEventPayload);
    expect(api.EventEnvelope).toBe(api.GeoEventEnvelope);
    expect(api.ConnectedClient).toBe(api.GeoConnectedClient);
    expect(api.MemoryNetwork).toBe(api.GeoMemoryNetwork);
    /* eslint-enable @typescript-eslint/no-deprecated */
  });

  it("publishes GeoWsServer with what apps use; the module's internals are left out of its declaration", () => {
    expect(publishedMembers('./gateway/geo-ws.server.ts', 'GeoWsServer')).toEqual([
      'beforeApplicationShutdown',
      'connectionCount',
      'isDraining',
      'isReady',
      'onApplicationBootstrap',
      'onApplicationShutdown',
      'revoke',
    ]);
  });
});
