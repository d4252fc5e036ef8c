import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Catch, Injectable, Module, UseFilters, type ExceptionFilter, type INestApplication, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WsException } from '@nestjs/websockets';
import { randomUUID } from 'node:crypto';
import { GeoSubscribe, jwtAuthenticator, memoryTransport, GeoMemoryNetwork, GeoWsModule } from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';
import { freePort } from '../apps/lab/src/topology/free-port.js';
import { handshakeOutcome, signTestToken, TEST_AUDIENCE, TEST_ISSUER } from './support/tokens.js';
import { WsTestClient } from './support/ws-test-client.js';

/** Every line the app logs, at every level (debug and verbose included). */
class CapturingLogger implements LoggerService {
  readonly lines: { level: string; text: string }[] = [];
  private record(level: string, parts: unknown[]): void {
    this.lines.push({
      level,
      text: parts.map((part) => (part instanceof Error ? `${part.message}\n${part.stack}` : String(part))).join(' '),
    });
  }
  log(...parts: unknown[]) {
    this.record('log', parts);
  }
  error(...parts: unknown[]) {
    this.record('error', parts);
  }
  warn(...parts: unknown[]) {
    this.record('warn', parts);
  }
  debug(...parts: unknown[]) {
    this.record('debug', parts);
  }
  verbose(...parts: unknown[]) {
    this.record('verbose', parts);
  }
  fatal(...parts: unknown[]) {
    this.record('fatal', parts);
  }
  /** Lines logged after `mark` (an index into {@link lines}). */
  since(mark: number) {
    return this.lines.slice(mark);
  }
}

/** A user filter: turns the handler's refusal into FORBIDDEN (user filters still run). */
@Catch(WsException)
class ForbidFilter implements ExceptionFilter {
  catch(): never {
    throw new WsException({ code: 'FORBIDDEN', message: 'filtered by the app' });
  }
}

@Injectable()
class RefusingGateway {
  @UseFilters(ForbidFilter)
  @GeoSubscribe('note.filtered')
  filtered(): never {
    throw new WsException('refused, then filtered');
  }

  @GeoSubscribe('note.refused')
  refused(): never {
    throw new WsException('not this one');
  }

  @GeoSubscribe('note.broken')
  broken(): never {
    throw new Error('handler bug: kaboom');
  }
}

const SECRET = `refusal-logs-${randomUUID()}`;

/**
 * Refusals do not flood the logs: a handler that throws `WsException` 1,000 times gives
 * the client 1,000 `geo.error` frames and the logs a few lines; an unexpected handler
 * error is still logged at ERROR with its stack; a bad token never appears in any line.
 */
describe('refusals in the logs', () => {
  let app: INestApplication;
  let url: string;
  let logger: CapturingLogger;

  beforeAll(async () => {
    const port = await freePort();
    url = `ws://127.0.0.1:${port}/ws`;
    @Module({
      imports: [
        GeoWsModule.forRoot({
          region: 'eu',
          regions: { eu: `http://127.0.0.1:${port}` },
          transport: memoryTransport({ network: new GeoMemoryNetwork() }),
          authenticate: jwtAuthenticator({ issuer: TEST_ISSUER, audience: TEST_AUDIENCE, secret: SECRET }),
          // Room for 1,000 refusals in a burst: this test is about the logs, not the limits.
          limits: { rate: { perSecond: 5000, burst: 5000 }, refusals: { perSecond: 5000, burst: 5000 } },
          metrics: { registry: new (await import('prom-client')).Registry() },
        }),
      ],
      providers: [RefusingGateway],
    })
    class LogsAppModule {}
    logger = new CapturingLogger();
    app = await NestFactory.create(LogsAppModule, { logger });
    await app.listen(port, '127.0.0.1');
  });

  afterAll(async () => {
    await app.close();
  });

  it('answers 1,000 WsExceptions from a handler with 1,000 geo.error frames and at most a few log lines', async () => {
    const client = await WsTestClient.connect(url, { token: await signTestToken(SECRET, 'mallory') });
    const room = `logs-${randomUUID().slice(0, 8)}`;
    await client.join(room);
    const mark = logger.lines.length;
    for (let i = 0; i < 1000; i++) client.send('note.refused', { event_id: randomUUID(), room_id: room, data: {} });
    await waitFor(() => client.errors().length >= 1000, '1,000 geo.error frames', 20_000);
    expect(client.errors().every((error) => error.code === 'REJECTED')).toBe(true);
    expect(client.isOpen).toBe(true);
    const lines = logger.since(mark).filter((line) => line.level !== 'debug' && line.level !== 'verbose');
    expect(lines.filter((line) => line.level === 'error')).toEqual([]);
    expect(lines.length).toBeLessThanOrEqual(3);
    expect(lines.some((line) => line.text.includes('REJECTED'))).toBe(true);
    client.close();
  });

  it('still logs an unexpected handler error at ERROR, with its stack', async () => {
    const client = await WsTestClient.connect(url, { token: await signTestToken(SECRET, 'alice') });
    const room = `logs-${randomUUID().slice(0, 8)}`;
    await client.join(room);
    const mark = logger.lines.length;
    const answer = await client.publish('note.broken', room, {});
    expect(answer.code).toBe('INTERNAL');
    await waitFor(() => logger.since(mark).some((line) => line.level === 'error'), 'an ERROR line');
    const errors = logger.since(mark).filter((line) => line.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0].text).toContain('kaboom');
    expect(errors[0].text).toMatch(/at .*refusal-logs\.e2e-spec\.ts/); // the stack
    client.close();
  });

  it('still runs the app`s exception filters on geo handlers, quietly', async () => {
    const client = await WsTestClient.connect(url, { token: await signTestToken(SECRET, 'bob') });
    const room = `logs-${randomUUID().slice(0, 8)}`;
    await client.join(room);
    const mark = logger.lines.length;
    const answer = await client.publish('note.filtered', room, {});
    expect({ code: answer.code, message: answer.message }).toEqual({ code: 'FORBIDDEN', message: 'filtered by the app' });
    expect(logger.since(mark).filter((line) => line.level === 'error')).toEqual([]);
    client.close();
  });

  it('never writes a bad token to the logs (header, subprotocol, query string, geo.auth)', async () => {
    const forged = await signTestToken('another-secret', 'eve');
    const garbage = `not-a-jwt-${randomUUID()}`;
    const badSignature = await signTestToken(SECRET, 'eve').then((token) => `${token.slice(0, -4)}AAAA`); // bad signature
    for (const token of [forged, garbage, badSignature]) {
      await expect(WsTestClient.connect(url, { token })).rejects.toThrow('HTTP 401');
      expect(await handshakeOutcome(url, { token })).toEqual({ status: 401, code: 'UNAUTHORIZED' });
      await expect(WsTestClient.connect(`${url}?access_token=${encodeURIComponent(token)}`)).rejects.toThrow('HTTP 401');
    }
    const client = await WsTestClient.connect(url, { token: await signTestToken(SECRET, 'eve') });
    for (const token of [forged, garbage, badSignature]) {
      client.send('geo.auth', { token });
      await client.next('geo.error', (data) => data.code === 'UNAUTHORIZED');
    }
    client.close();
    const everything = logger.lines.map((line) => line.text).join('\n');
    for (const token of [forged, garbage, badSignature]) {
      expect(everything).not.toContain(token);
      // Not even a recognisable part of one (a JWT's signature segment).
      expect(everything).not.toContain(token.split('.').at(-1)!);
    }
  });
});
