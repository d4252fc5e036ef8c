/**
 * The append, atomically on the primary (G1 + G2): the dedup check, the per-room counter
 * and the XADD happen in one script, so seq is gap-free and a retried event_id is stored
 * once. Also trims by count (MAXLEN) and by age (entries carry their append time `t`).
 *
 * Each entry carries its log's epoch (`g`), so a live reader can tell an entry of a new
 * incarnation (the primary lost its data and the counter started again) from the next
 * entry of the log it follows, and stop before delivering it. The first event makes the
 * meta hash permanent: until then it may carry the expiry a read gave it (EPOCH_SCRIPT).
 *
 * KEYS: stream, meta, dedup key. ARGV: envelope JSON, dedup window ms, max events,
 * epoch to use if the log is new, max age ms, now ms, wake-up channel ('' for none).
 * Returns { seq, duplicate (0|1), epoch }.
 */
export const APPEND_SCRIPT = `
local epoch = redis.call('HGET', KEYS[2], 'epoch')
local known = redis.call('GET', KEYS[3])
if known and epoch then return {tonumber(known), 1, epoch} end
if not epoch then
  epoch = ARGV[4]
  redis.call('HSET', KEYS[2], 'epoch', epoch)
end
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
redis.call('PERSIST', KEYS[2])
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], seq .. '-0', 'e', ARGV[1], 't', ARGV[6], 'g', epoch)
redis.call('SET', KEYS[3], seq, 'PX', ARGV[2])
local cutoff = tonumber(ARGV[6]) - tonumber(ARGV[5])
for _ = 1, 64 do
  local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 32)
  local keep = nil
  local old = 0
  for _, entry in ipairs(head) do
    if tonumber(entry[2][4]) >= cutoff then keep = entry[1] break end
    old = old + 1
  end
  if old == 0 then break end
  if keep then
    redis.call('XTRIM', KEYS[1], 'MINID', keep)
    break
  end
  local last = tonumber(string.match(head[#head][1], '^(%d+)'))
  redis.call('XTRIM', KEYS[1], 'MINID', (last + 1) .. '-0')
end
if ARGV[7] ~= '' then redis.call('PUBLISH', ARGV[7], seq) end
return {seq, 0, epoch}
`;

/**
 * Returns the log's epoch, creating it if the log is new. A log without events keeps its
 * epoch only for `ttl` after the last read or live check (any client can make one by
 * joining a room, so it must not be permanent); its first append makes it permanent.
 * KEYS: meta. ARGV: candidate epoch, ttl ms.
 */
export const EPOCH_SCRIPT = `
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 or redis.call('PTTL', KEYS[1]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('HGET', KEYS[1], 'epoch')
`;

/**
 * The live tails' periodic check: the log's epoch and last seq as the primary has them,
 * and, for a log without events, a fresh expiry once half of it has passed, so the epoch
 * a live room's members hold cannot expire under them. KEYS: meta. ARGV: ttl ms.
 * Returns { epoch or nil, seq or nil }.
 */
export const CHECK_SCRIPT = `
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 and ttl < tonumber(ARGV[1]) / 2 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return redis.call('HMGET', KEYS[1], 'epoch', 'seq')
`;

/**
 * Resets a log: a new epoch, seq back to 0, the stream gone. The meta expires like that
 * of any log without events. KEYS: stream, meta. ARGV: new epoch, ttl ms.
 */
export const RESET_SCRIPT = `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'epoch', ARGV[1], 'seq', 0)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`;
