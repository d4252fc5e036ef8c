import { describe, expect, it, jest } from '@jest/globals';
import { webcrypto } from 'node:crypto';
import { SignJWT } from 'jose';
import { jwtAuthenticator } from './jwt-authenticator.js';

const SECRET = 'jwt-authenticator-spec-secret-long-enough!!';
const url = new URL('http://localhost/ws');

function sign(lifetimeSec: number, options: { iat?: number | false } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('ana').setIssuer('iss').setAudience('aud');
  if (options.iat !== false) jwt.setIssuedAt(options.iat ?? now);
  return jwt.setExpirationTime((options.iat || now) + lifetimeSec).sign(new TextEncoder().encode(SECRET));
}

describe('jwtAuthenticator: maxTokenLifetimeSec', () => {
  const capped = jwtAuthenticator({ issuer: 'iss', audience: 'aud', secret: SECRET, maxTokenLifetimeSec: 600 });
  const uncapped = jwtAuthenticator({ issuer: 'iss', audience: 'aud', secret: SECRET });

  it('accepts tokens living at most the cap', async () => {
    expect(await capped({ url, token: await sign(600) })).toMatchObject({ id: 'ana' });
    expect(await capped({ url, token: await sign(60) })).toMatchObject({ id: 'ana' });
  });

  it('refuses a longer-lived token (10 years), one without iat, and one whose iat is in the future', async () => {
    expect(await capped({ url, token: await sign(10 * 365 * 24 * 3600) })).toBeNull();
    expect(await capped({ url, token: await sign(601) })).toBeNull();
    expect(await capped({ url, token: await sign(300, { iat: false }) })).toBeNull();
    expect(await capped({ url, token: await sign(300, { iat: Math.floor(Date.now() / 1000) + 3600 }) })).toBeNull();
  });

  it('without the option only exp counts, as before', async () => {
    expect(await uncapped({ url, token: await sign(10 * 365 * 24 * 3600) })).toMatchObject({ id: 'ana' });
    expect(() => jwtAuthenticator({ issuer: 'iss', audience: 'aud', secret: SECRET, maxTokenLifetimeSec: 0 })).toThrow(
      'maxTokenLifetimeSec',
    );
  });
});

describe('jwtAuthenticator: what a principal holds for its connection', () => {
  const authenticate = jwtAuthenticator({ issuer: 'iss', audience: 'aud', secret: SECRET });
  const signWith = (subject: string, claims: Record<string, unknown>): Promise<string> =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(subject)
      .setIssuer('iss')
      .setAudience('aud')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(SECRET));

  it('equal regions and rooms lists are one frozen array, shared by principals and their claims', async () => {
    const ana = await authenticate({ url, token: await signWith('ana', { regions: ['eu', 'us'], rooms: ['*'] }) });
    const bob = await authenticate({ url, token: await signWith('bob', { regions: ['eu', 'us'], rooms: ['*'] }) });
    expect(ana?.regions).toEqual(['eu', 'us']);
    expect(bob?.regions).toBe(ana?.regions);
    expect(bob?.rooms).toBe(ana?.rooms);
    expect(ana?.claims?.regions).toBe(ana?.regions);
    expect(Object.isFrozen(ana?.regions)).toBe(true);
    expect(() => ana?.rooms?.push('team.*')).toThrow(TypeError); // no connection can widen another's rooms
    expect(bob?.rooms).toEqual(['*']);
  });

  it('a list with non-strings: the principal gets its strings, the claims keep what the token said', async () => {
    const ana = await authenticate({ url, token: await signWith('ana', { regions: ['eu', 7], rooms: 'lobby' }) });
    expect(ana?.regions).toEqual(['eu']);
    expect(ana?.claims?.regions).toEqual(['eu', 7]);
    expect(ana?.rooms).toEqual([]);
    expect(ana?.claims?.rooms).toBe('lobby');
    expect(ana?.claims).toMatchObject({ iss: 'iss', aud: 'aud', sub: 'ana' });
  });
});

describe('jwtAuthenticator: a shared secret', () => {
  const signWith = (alg: string, secret = SECRET): Promise<string> =>
    new SignJWT({})
      .setProtectedHeader({ alg })
      .setSubject('ana')
      .setIssuer('iss')
      .setAudience('aud')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(secret));

  it('verifies each allowed HS algorithm with its own key, many tokens with one import, and refuses the others', async () => {
    const tokens = await Promise.all([signWith('HS256'), signWith('HS384'), signWith('HS256')]);
    const imports = jest.spyOn(webcrypto.subtle, 'importKey');
    const authenticate = jwtAuthenticator({ issuer: 'iss', audience: 'aud', secret: SECRET, algorithms: ['HS256', 'HS384'] });
    for (const token of tokens) expect(await authenticate({ url, token })).toMatchObject({ id: 'ana' });
    expect(imports).toHaveBeenCalledTimes(2); // one key per algorithm, none per token
    imports.mockRestore();
    expect(await authenticate({ url, token: await signWith('HS512') })).toBeNull();
    expect(await authenticate({ url, token: await signWith('HS256', 'another-secret-that-is-long-enough-too!!') })).toBeNull();
  });

  it('is refused with an algorithm that is not HS256, HS384 or HS512', () => {
    expect(() => jwtAuthenticator({ issuer: 'iss', audience: 'aud', secret: SECRET, algorithms: ['HS257'] })).toThrow(
      'a secret verifies HS256, HS384 and HS512 only',
    );
  });
});
