import { BadRequestException, Body, Controller, Header, Inject, Post } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { AuthConfig } from '../config.js';

/** Injection token of the demo authority's settings. */
export const DEMO_AUTH = Symbol('DEMO_AUTH');

/** How long a demo token lives: short, so the page shows in-band refreshes. */
const TOKEN_LIFETIME_S = 10 * 60;

/**
 * DEMO ONLY: a token authority inside the sample app, so the page can log in with just a
 * name. Every region signs with the same secret, so a token from one region is valid in
 * all of them, as with a real authority. In production, tokens come from your identity
 * provider and regions verify them with its JWKS (`GEO_AUTH=jwt`).
 */
@Controller('demo')
export class DemoTokenController {
  constructor(@Inject(DEMO_AUTH) private readonly auth: Extract<AuthConfig, { mode: 'demo' }> & { regions: string[] }) {}

  @Post('token')
  @Header('Cache-Control', 'no-store')
  async issue(@Body() body: { name?: unknown; regions?: unknown }): Promise<{ token: string; expires_at: string }> {
    const name = typeof body?.name === 'string' ? body.name.trim() : '';
    if (!/^[\w.-]{1,32}$/.test(name)) throw new BadRequestException('name: 1-32 letters, digits, "_", "." or "-"');
    const regions = Array.isArray(body.regions) ? body.regions.filter((region): region is string => this.auth.regions.includes(region as string)) : this.auth.regions;
    const expiresAt = Math.floor(Date.now() / 1000) + TOKEN_LIFETIME_S;
    const token = await new SignJWT({ regions, rooms: ['*'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(name)
      .setIssuer(this.auth.issuer)
      .setAudience(this.auth.audience)
      .setIssuedAt()
      .setExpirationTime(expiresAt)
      .setJti(randomUUID())
      .sign(new TextEncoder().encode(this.auth.secret));
    return { token, expires_at: new Date(expiresAt * 1000).toISOString() };
  }
}
