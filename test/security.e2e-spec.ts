import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import WebSocket from 'ws';
import { GeoClient } from '@geo-ws/client';
import { jwtAuthenticator } from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';
import { freePort } from '../apps/lab/src/topology/free-port.js';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

const SECRET = 'a-demo-secret-that-is-long-enough-for-hs256!';
const ISSUER = 'https://auth.geo-ws.test';
const AUDIENCE = 'geo-chat';

/** Signs an HS256 token; `claims` override the defaults (an hour of validity, both regions, all rooms). */
async function hsToken(
  claims: Record<string, unknown> = {},
  options: { secret?: string; alg?: string; expiresIn?: string | number } = {},
): Promise<string> {
  return new SignJWT({ regions: ['eu', 'us'], ...claims })
    .setProtectedHeader({ alg: options.alg ?? 'HS256' })
    .setSubject((claims.sub as string) ?? 'alice')
    .setIssuer((claims.iss as string) ?? ISSUER)
    .setAudience((claims.aud as string) ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '1h')
    .setJti((claims.jti as string) ?? `jti-${Math.random().toString(36).slice(2)}`)
    .sign(new TextEncoder().encode(options.secret ?? SECRET));
}

/** The upgrade's outcome: 'open', or the HTTP status and JSON body of the refusal. */
async function handshake(
  url: string,
  options: { token?: string; headers?: Record<string, string>; protocols?: string[] } = {},
): Promise<{ status: number; body?: { code: string }; protocol?: string }> {
  return new Promise((resolve) => {
    const headers = { ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), ...options.headers };
    const socket = new WebSocket(url, options.protocols ?? [], { headers });
    socket.once('open', () => {
      resolve({ status: 101, protocol: socket.protocol });
      socket.close();
    });
    socket.once('unexpected-response', (_request, response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    socket.once('error', () => undefined);
  });
}

describe('security: one token authority (HS256), region and room claims, revocation, expiry, origins', () => {
  let deployment: Deployment;
  /** Connected through every refusal below: it must see no error and stay open. */
  let bystander: WsTestClient;
  const pinging: NodeJS.Timeout[] = [];

  beforeAll(async () => {
    deployment = await deployRegions(['eu', 'us'], {
      geo: {
        authenticate: jwtAuthenticator({ issuer: ISSUER, audience: AUDIENCE, secret: SECRET, clockToleranceSec: 2 }),
        allowedOrigins: ['https://chat.geo-ws.test'],
        heartbeatMs: 100,
        limits: { idleTimeoutMs: 1500 },
      },
    });
    bystander = await WsTestClient.connect(deployment.region('eu').wsUrl, { token: await hsToken({ sub: 'bystander' }) });
    await bystander.join('vault');
    pinging.push(setInterval(() => bystander.send('geo.ping', {}), 300)); // not idle
  });

  afterAll(async () => {
    for (const timer of pinging) clearInterval(timer);
    bystander.close();
    await deployment.close();
  });

  const wsUrl = (region: string) => deployment.region(region).wsUrl;
  const connect = async (region: string, token: string) =>
    WsTestClient.connect(wsUrl(region), { headers: { authorization: `Bearer ${token}` } });

  it('accepts a valid token in every region it names; sub becomes the sender', async () => {
    const token = await hsToken({ sub: 'alice' });
    for (const region of ['eu', 'us']) {
      const client = await connect(region, token);
      expect(client.frames[0].data).toMatchObject({ sender: 'alice', region });
      client.close();
    }
  });

  it.each([
    ['no token', async () => undefined],
    ['an expired token', async () => hsToken({}, { expiresIn: Math.floor(Date.now() / 1000) - 60 })],
    ['a forged signature', async () => hsToken({}, { secret: 'another-secret-that-is-also-long-enough!!' })],
    ['another audience', async () => hsToken({ aud: 'billing' })],
    ['another issuer', async () => hsToken({ iss: 'https://evil.test' })],
    [
      'a token not valid yet',
      async () =>
        new SignJWT({})
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject('x')
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setNotBefore('1h')
          .setExpirationTime('2h')
          .sign(new TextEncoder().encode(SECRET)),
    ],
    [
      'alg: none',
      async () =>
        `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'admin', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 3600 })).toString('base64url')}.`,
    ],
    ['an HS384 token (algorithm not pinned)', async () => hsToken({}, { alg: 'HS384' })],
    ['garbage', async () => 'not.a.jwt'],
  ])('refuses %s with HTTP 401 UNAUTHORIZED before the socket opens', async (_label, makeToken) => {
    const result = await handshake(wsUrl('eu'), { token: await makeToken() });
    expect(result).toEqual({ status: 401, body: { code: 'UNAUTHORIZED', message: expect.any(String) } });
  });

  it('a token scoped to eu is refused at us (HTTP 403) and accepted at eu', async () => {
    const token = await hsToken({ regions: ['eu'] });
    expect(await handshake(wsUrl('us'), { token })).toMatchObject({ status: 403, body: { code: 'FORBIDDEN' } });
    expect((await handshake(wsUrl('eu'), { token })).status).toBe(101);
  });

  it('room patterns from the token are enforced on join', async () => {
    const client = await connect('eu', await hsToken({ rooms: ['team.*', 'lobby'] }));
    await client.join('team.eu');
    await client.join('lobby');
    client.send('geo.join', { room: 'admin' });
    expect(await client.next('geo.error', (data) => data.room === 'admin')).toMatchObject({ code: 'FORBIDDEN' });
    client.send('geo.join', { room: 'lobby2' });
    expect(await client.next('geo.error', (data) => data.room === 'lobby2')).toMatchObject({ code: 'FORBIDDEN' });
    client.close();
  });

  it('@GeoSubscribe({ regions }) refuses the event outside its regions', async () => {
    const token = await hsToken();
    const inUs = await connect('us', token);
    const inEu = await connect('eu', token);
    await inUs.join('residency');
    await inEu.join('residency');
    expect(await inUs.publish('note.eu-only', 'residency', {})).toMatchObject({ code: 'FORBIDDEN' });
    expect((await inEu.publish('note.eu-only', 'residency', {})).seq).toEqual(expect.any(Number));
    inUs.close();
    inEu.close();
  });

  it('browsers send the token as a subprotocol: accepted, and only geo-ws.v1 is echoed back', async () => {
    const token = await hsToken();
    const result = await handshake(wsUrl('eu'), { protocols: ['geo-ws.v1', `bearer.${token}`] });
    expect(result).toEqual({ status: 101, protocol: 'geo-ws.v1' });
  });

  it('Origin allowlist: another site cannot open a socket; the allowed origin and non-browser clients can', async () => {
    const token = await hsToken();
    expect(await handshake(wsUrl('eu'), { token, headers: { origin: 'https://evil.test' } })).toMatchObject({
      status: 403,
      body: { code: 'FORBIDDEN' },
    });
    expect((await handshake(wsUrl('eu'), { token, headers: { origin: 'https://chat.geo-ws.test' } })).status).toBe(101);
    expect((await handshake(wsUrl('eu'), { token })).status).toBe(101);
  });

  it('Origin allowlist: an empty Origin header is not "no Origin": refused (403) at the upgrade and by GET /geo/handshake', async () => {
    const token = await hsToken();
    expect(await handshake(wsUrl('eu'), { token, headers: { origin: '' } })).toMatchObject({ status: 403, body: { code: 'FORBIDDEN' } });
    const check = await fetch(`${deployment.region('eu').url}/geo/handshake`, {
      headers: { authorization: `Bearer ${token}`, origin: '' },
      cache: 'no-store',
    });
    expect([check.status, await check.json(), check.headers.get('access-control-allow-origin')]).toEqual([
      403,
      { code: 'FORBIDDEN', message: 'this origin may not open a WebSocket here' },
      null,
    ]);
  });

  it('revoking a token in one region closes its connection in another (geo.error UNAUTHORIZED, then 4003): nothing it sends after is appended', async () => {
    const jti = `jti-revoked-${Date.now()}`;
    const token = await hsToken({ sub: 'mallory', jti });
    const inUs = await connect('us', token);
    await inUs.join('vault');
    expect((await inUs.publish('vault.transfer', 'vault', { amount: 1 })).seq).toEqual(expect.any(Number));
    await deployment.region('eu').server.revoke(jti, Date.now() + 3_600_000); // revoked in eu, used in us
    inUs.send('vault.transfer', { event_id: `after-revoke-${Date.now()}`, room_id: 'vault', data: { amount: 2 } });
    expect(await inUs.waitForClose()).toBe(4003);
    expect(inUs.errors()).toEqual([{ code: 'UNAUTHORIZED', message: 'the token was revoked' }]);
    expect((await handshake(wsUrl('us'), { token })).status).toBe(401);
  });

  it('a connection is closed when its token expires (4001) unless refreshed in-band with geo.auth', async () => {
    const expiring = Math.floor(Date.now() / 1000) + 2;
    const lapsing = await connect('eu', await hsToken({ sub: 'lapse' }, { expiresIn: expiring }));
    const refreshed = await connect('eu', await hsToken({ sub: 'keeper' }, { expiresIn: expiring }));
    // Both keep talking, so the idle timeout (1.5 s here) is not what closes them.
    pinging.push(setInterval(() => [lapsing, refreshed].forEach((client) => client.isOpen && client.send('geo.ping', {})), 300));
    refreshed.send('geo.auth', { token: await hsToken({ sub: 'keeper' }, { expiresIn: '1h' }) });
    expect(await refreshed.next('geo.authed')).toEqual({ expires_at: expect.stringMatching(/Z$/) });
    refreshed.send('geo.auth', { token: await hsToken({ sub: 'someone-else' }) });
    expect(await refreshed.next('geo.error', (data) => /another identity/.test(data.message))).toMatchObject({ code: 'UNAUTHORIZED' });
    expect(await lapsing.waitForClose(6000)).toBe(4001);
    expect(refreshed.isOpen).toBe(true);
    refreshed.close();
  }, 15_000);

  it('geo.auth with narrower rooms ends the memberships the new token no longer allows (geo.left FORBIDDEN): no more of their events, no rejoin', async () => {
    const speaker = await connect('eu', await hsToken({ sub: 'speaker' }));
    const narrowed = await connect('eu', await hsToken({ sub: 'narrowed' }));
    for (const room of ['claims.lobby', 'claims.secret']) {
      await speaker.join(room);
      await narrowed.join(room);
    }
    await speaker.publish('note.add', 'claims.secret', { text: 'before' });
    await narrowed.waitForEvents('claims.secret', 1);
    narrowed.send('geo.auth', { token: await hsToken({ sub: 'narrowed', rooms: ['claims.lobby'] }) });
    expect(await narrowed.next('geo.left')).toEqual({
      room: 'claims.secret',
      code: 'FORBIDDEN',
      message: 'geo.auth: the new token may not use room "claims.secret"; it was left',
    });
    expect(await narrowed.next('geo.authed')).toEqual({ expires_at: expect.stringMatching(/Z$/) });
    const events = narrowed.frames.map((frame) => frame.event);
    expect(events.indexOf('geo.left')).toBeLessThan(events.indexOf('geo.authed'));
    await speaker.publish('note.add', 'claims.secret', { text: 'after' });
    await speaker.publish('note.add', 'claims.lobby', { text: 'still allowed' });
    await narrowed.waitForEvents('claims.lobby', 1);
    await speaker.waitForEvents('claims.secret', 2);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(narrowed.events('claims.secret').map((event) => (event.data as { text: string }).text)).toEqual(['before']);
    expect(await narrowed.publish('note.add', 'claims.secret', { text: 'no' })).toMatchObject({ code: 'NOT_JOINED' });
    narrowed.send('geo.join', { room: 'claims.secret' });
    expect(await narrowed.next('geo.error', (data) => data.room === 'claims.secret')).toMatchObject({ code: 'FORBIDDEN' });
    // Refreshing again with the same claims ends nothing more, and the lobby stays.
    narrowed.send('geo.auth', { token: await hsToken({ sub: 'narrowed', rooms: ['claims.lobby'] }) });
    await narrowed.next('geo.authed');
    expect(narrowed.frames.filter((frame) => frame.event === 'geo.left')).toHaveLength(1);
    expect((await narrowed.publish('note.add', 'claims.lobby', { text: 'lobby still' })).seq).toEqual(expect.any(Number));
    speaker.close();
    narrowed.close();
  });

  it.each([
    ['another region', ['us']],
    ['no region', []],
  ])(
    'geo.auth with a token for %s closes the connection as the upgrade would refuse it: geo.error FORBIDDEN, close 4004',
    async (_label, regions) => {
      const moved = await connect('eu', await hsToken({ sub: 'moved' }));
      await moved.join('claims.lobby');
      moved.send('geo.auth', { token: await hsToken({ sub: 'moved', regions }) });
      expect(await moved.next('geo.error')).toEqual({ code: 'FORBIDDEN', message: 'geo.auth: this token may not be used in region "eu"' });
      expect(await moved.waitForClose()).toBe(4004);
      expect(moved.frames.some((frame) => frame.event === 'geo.authed')).toBe(false);
    },
  );

  it('through every refusal above, a bystander on the same server saw no error and kept receiving', async () => {
    expect(bystander.isOpen).toBe(true);
    expect(bystander.errors()).toEqual([]);
    const events = bystander.events('vault');
    expect(events.length).toBeGreaterThanOrEqual(1); // the accepted vault event
    expect(
      events.map((event) => (event.data as { amount?: number; text?: string }).amount ?? (event.data as { text: string }).text),
    ).toEqual([1]); // nothing from the revoked token was appended
  });

  it('the SDK refreshes a short-lived token in-band before it expires, so the connection stays open', async () => {
    let issued = 0;
    const client = await GeoClient.connect({
      regions: [{ name: 'eu', url: deployment.region('eu').url, wsUrl: wsUrl('eu') }],
      WebSocket: WebSocket,
      token: () => (issued++, hsToken({ sub: 'sdk-user' }, { expiresIn: Math.floor(Date.now() / 1000) + 3 })),
      heartbeatMs: 500,
    });
    const states: string[] = [];
    client.on('state', (state) => states.push(state));
    await client.join('refresh', () => undefined);
    await new Promise((resolve) => setTimeout(resolve, 4500)); // past the first token's expiry
    expect(issued).toBeGreaterThanOrEqual(2); // the handshake's, then at least one refresh
    expect(states).toEqual([]); // never dropped
    expect((await client.publish('refresh', 'note.add', { text: 'still here' })).seq).toEqual(expect.any(Number));
    client.close();
  }, 15_000);

  it('an idle connection is closed (4002); a chatty one is not', async () => {
    const idle = await connect('eu', await hsToken({ sub: 'idle' }));
    const chatty = await connect('eu', await hsToken({ sub: 'chatty' }));
    const pinging = setInterval(() => chatty.send('geo.ping', {}), 300);
    try {
      expect(await idle.waitForClose(4000)).toBe(4002);
      expect(chatty.isOpen).toBe(true);
    } finally {
      clearInterval(pinging);
      chatty.close();
    }
  });
});

describe('security: RS256/ES256 through a JWKS, with key rotation', () => {
  let deployment: Deployment;
  let jwks: Server;
  let keys: JWK[] = [];
  const pairs: Record<string, Awaited<ReturnType<typeof generateKeyPair>>> = {};

  const sign = (kid: string, alg = 'RS256', claims: Record<string, unknown> = {}) =>
    new SignJWT({ ...claims })
      .setProtectedHeader({ alg, kid })
      .setSubject('rita')
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('1h')
      .sign(pairs[kid].privateKey);

  beforeAll(async () => {
    pairs.k1 = await generateKeyPair('RS256', { extractable: true });
    pairs.k2 = await generateKeyPair('ES256', { extractable: true });
    keys = [{ ...(await exportJWK(pairs.k1.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }];
    jwks = createServer((_request, response) => {
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ keys }));
    });
    const port = await freePort();
    await new Promise<void>((resolve) => jwks.listen(port, '127.0.0.1', () => resolve()));
    deployment = await deployRegions(['eu'], {
      geo: {
        authenticate: jwtAuthenticator({
          issuer: ISSUER,
          audience: AUDIENCE,
          jwksUrl: `http://127.0.0.1:${port}/jwks.json`,
          jwksCooldownMs: 100,
          jwksCacheMaxAgeMs: 500,
        }),
      },
    });
  });

  afterAll(async () => {
    await deployment.close();
    await new Promise((resolve) => jwks.close(resolve));
  });

  const url = () => deployment.region('eu').wsUrl;

  it('tokens signed with a new kid are accepted after rotation without a restart; the old key until it leaves the JWKS', async () => {
    const old = await sign('k1');
    expect((await handshake(url(), { token: old })).status).toBe(101);
    const unknownYet = await sign('k2', 'ES256');
    expect((await handshake(url(), { token: unknownYet })).status).toBe(401);
    keys = [...keys, { ...(await exportJWK(pairs.k2.publicKey)), kid: 'k2', alg: 'ES256', use: 'sig' }]; // rotation: both published
    await new Promise((resolve) => setTimeout(resolve, 150)); // past the refetch cooldown
    expect((await handshake(url(), { token: await sign('k2', 'ES256') })).status).toBe(101);
    expect((await handshake(url(), { token: old })).status).toBe(101); // overlap
    keys = keys.filter((key) => key.kid !== 'k1'); // the old key is retired
    await new Promise((resolve) => setTimeout(resolve, 700)); // past the cache age
    expect((await handshake(url(), { token: await sign('k2', 'ES256') })).status).toBe(101);
    expect((await handshake(url(), { token: old })).status).toBe(401);
  });

  it('RS→HS confusion: an HS256 token keyed with the public key is refused', async () => {
    const publicPem = Buffer.from(JSON.stringify(await exportJWK(pairs.k2.publicKey)));
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', kid: 'k2' })
      .setSubject('admin')
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('1h')
      .sign(publicPem);
    expect((await handshake(url(), { token: forged })).status).toBe(401);
  });
});

/** One upgrade, followed: refused (HTTP status and body), or open, with every frame it gets and its close code once closed. */
async function followUpgrade(
  url: string,
  token: string,
): Promise<{
  status: number;
  body?: { code: string; message: string };
  frames: { event: string; data: any }[];
  closeCode(): number | undefined;
  socket?: WebSocket;
}> {
  const frames: { event: string; data: any }[] = [];
  let closeCode: number | undefined;
  return new Promise((resolve) => {
    const socket = new WebSocket(url, ['geo-ws.v1', `bearer.${token}`]);
    socket.on('message', (raw: Buffer) => frames.push(JSON.parse(raw.toString())));
    socket.on('close', (code) => (closeCode = code));
    socket.once('open', () => resolve({ status: 101, frames, closeCode: () => closeCode, socket }));
    socket.once('unexpected-response', (_request, response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, body: text ? JSON.parse(text) : undefined, frames, closeCode: () => closeCode }),
      );
    });
    socket.once('error', () => undefined);
  });
}

/** Issue 20, point 7: one token opened 200 connections × 100 rooms in under 30 s. */
describe('security: connections per user (limits.maxConnectionsPerUser)', () => {
  const LIMIT = 3;
  let deployment: Deployment;
  let bystander: WsTestClient;
  /** While set, authenticate() waits for it: upgrades then pass the check together. */
  let hold: Promise<void> | undefined;
  let authenticating = 0;
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    const jwt = jwtAuthenticator({ issuer: ISSUER, audience: AUDIENCE, secret: SECRET });
    deployment = await deployRegions(['eu'], {
      geo: {
        authenticate: async (handshake) => {
          const principal = await jwt(handshake);
          authenticating++;
          await hold;
          return principal;
        },
        limits: { maxConnectionsPerUser: LIMIT },
      },
    });
    bystander = await WsTestClient.connect(deployment.region('eu').wsUrl, { token: await hsToken({ sub: 'bystander' }) });
    await bystander.join('limits');
  });

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    bystander.close();
    await deployment.close();
  });

  const url = () => deployment.region('eu').wsUrl;
  const open = async (token: string) => {
    const outcome = await followUpgrade(url(), token);
    if (outcome.socket) sockets.push(outcome.socket);
    return outcome;
  };

  it('one user past the limit is refused at the upgrade: 429 TOO_MANY_CONNECTIONS, also by GET /geo/handshake; other users are not; a closed connection frees its place', async () => {
    const token = await hsToken({ sub: 'greedy' });
    const opened: Awaited<ReturnType<typeof open>>[] = [];
    for (let i = 0; i < LIMIT; i++) opened.push(await open(await hsToken({ sub: 'greedy' })));
    expect(opened.map((outcome) => outcome.status)).toEqual(Array(LIMIT).fill(101));
    const refused = await open(token);
    expect([refused.status, refused.body]).toEqual([
      429,
      { code: 'TOO_MANY_CONNECTIONS', message: `this user has ${LIMIT} connections to this server, its limit; close one first` },
    ]);
    const check = await fetch(`${deployment.region('eu').url}/geo/handshake`, { headers: { authorization: `Bearer ${token}` } });
    expect([check.status, await check.json()]).toEqual([429, refused.body]);
    expect((await open(await hsToken({ sub: 'modest' }))).status).toBe(101);
    opened[0].socket!.close();
    await waitFor(() => opened[0].closeCode() !== undefined, 'the first connection to close');
    let again = await handshake(url(), { token });
    for (let attempt = 0; attempt < 20 && again.status !== 101; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      again = await handshake(url(), { token });
    }
    expect(again.status).toBe(101);
  });

  it('upgrades that pass the check together: those past the limit are told TOO_MANY_CONNECTIONS and closed with 4008', async () => {
    let release!: () => void;
    hold = new Promise<void>((resolve) => (release = resolve));
    authenticating = 0;
    const attempts = Array.from({ length: LIMIT + 3 }, async () => open(await hsToken({ sub: 'racer' })));
    await waitFor(() => authenticating === LIMIT + 3, 'every upgrade to be authenticated');
    release();
    hold = undefined;
    const outcomes = await Promise.all(attempts);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(Array(LIMIT + 3).fill(101));
    await waitFor(() => outcomes.filter((outcome) => outcome.closeCode() !== undefined).length === 3, 'the three over the limit to close');
    const closed = outcomes.filter((outcome) => outcome.closeCode() !== undefined);
    for (const outcome of closed) {
      expect(outcome.closeCode()).toBe(4008);
      expect(outcome.frames).toEqual([
        {
          event: 'geo.error',
          data: { code: 'TOO_MANY_CONNECTIONS', message: `this user has ${LIMIT} connections to this server, its limit; close one first` },
        },
      ]);
    }
    const kept = outcomes.filter((outcome) => outcome.closeCode() === undefined);
    expect(kept.map((outcome) => outcome.frames[0]?.event)).toEqual(Array(LIMIT).fill('geo.welcome'));
    expect((await open(await hsToken({ sub: 'racer' }))).status).toBe(429);
  });

  it('the bystander saw no error and kept receiving', async () => {
    expect((await bystander.publish('note.add', 'limits', { text: 'still here' })).seq).toEqual(expect.any(Number));
    await bystander.waitForEvents('limits', 1);
    expect(bystander.errors()).toEqual([]);
    expect(bystander.isOpen).toBe(true);
  });
});
