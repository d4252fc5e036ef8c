/**
 * Names the demo authority never hands out: administrators, the system, and anything
 * that passes for geo-ws itself. Compared without case, separators (`.`, `_`, `-`) and
 * trailing digits, so `Root`, `r.o.o.t`, `root_1` and `ADMIN-2` are all refused.
 */
const RESERVED = new Set([
  'admin',
  'administrator',
  'root',
  'superuser',
  'sudo',
  'system',
  'sysadmin',
  'sysop',
  'operator',
  'moderator',
  'mod',
  'owner',
  'staff',
  'support',
  'security',
  'official',
  'server',
  'service',
  'bot',
  'everyone',
  'here',
  'channel',
  'all',
  'anonymous',
  'nobody',
  'null',
  'undefined',
]);

/** Prefixes reserved outright: whatever follows, the name claims to be an admin, the system or geo-ws. */
const RESERVED_PREFIXES = ['admin', 'system', 'geows'];

/** Whether the demo authority must refuse to issue a token for `name`. */
export function isReservedName(name: string): boolean {
  const folded = name.toLowerCase().replace(/[._-]/g, '');
  const stem = folded.replace(/\d+$/, '');
  return RESERVED.has(stem) || RESERVED_PREFIXES.some((prefix) => folded.startsWith(prefix));
}
