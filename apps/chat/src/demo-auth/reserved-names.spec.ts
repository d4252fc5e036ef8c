import { describe, expect, it } from '@jest/globals';
import { isReservedName } from './reserved-names.js';

describe('names the demo authority never hands out', () => {
  it.each([
    'admin',
    'ADMIN',
    'Admin-2',
    'administrator',
    'admin.eu',
    'root',
    'Root',
    'root_',
    'r.o.o.t',
    'root1',
    'system',
    'SYSTEM',
    'system-bot',
    'sysadmin',
    'moderator',
    'mod',
    'support',
    'staff',
    'owner',
    'geo-ws',
    'GeoWS',
    'geows',
    'geo_ws.server',
    'GeoWS_bot',
    'everyone',
    'null',
  ])('reserves %s', (name) => expect(isReservedName(name)).toBe(true));

  it.each(['ana', 'guest-42', 'rootbeer', 'geoffrey', 'geo', 'modesto', 'alice', 'eu-user', 'asia-0', 'traveller', 'bystander'])(
    'allows %s',
    (name) => expect(isReservedName(name)).toBe(false),
  );
});
