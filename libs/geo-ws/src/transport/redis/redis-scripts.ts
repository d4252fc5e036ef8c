/**
 * The append, atomically on the primary (G1 + G2): the dedup check, the per-room counter
 * and the XADD happen in one script, so seq is gap-free and a retried event_id is stored
 * once. Also trims by count (MAXLEN) and by age (entries carry their append time `t`).
 *
 * Each entry carries its log's epoch (`g`), so a live reader can tell an entry of a new
 * incarnation (the primary lost its data and the counter started again) from the next
 * entry of the log it follows, and stop before delivering it.
 *
 * No key lives forever: the stream expires `max age` after its last append (by then every
 * entry is past retention), and the meta hash (epoch and counter) `meta ttl` after it,
 * which is longer, so the counter goes on after the events aged out and the meta never
 * expires before its stream. Reads and live tails extend it while the room is in use.
 *
 * KEYS: stream, meta, dedup key. ARGV: envelope JSON, dedup window ms, max events,
 * epoch to use if the log is new, max age ms, now ms, wake-up channel ('' for none),
 * meta ttl ms. Returns { seq, duplicate (0|1), epoch }.
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
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], seq .. '-0', 'e', ARGV[1], 't', ARGV[6], 'g', epoch)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[8]) then redis.call('PEXPIRE', KEYS[2], ARGV[8]) end
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
 * Returns the log's epoch, creating it if the log is new. Any client can make a log by
 * joining a room, so its meta lives at least `ttl` after this read and no longer than
 * needed: an expiry is only ever extended here, never shortened below its stream's, and
 * a meta without one (written by older versions, beside a stream without one) keeps none.
 * KEYS: meta. ARGV: candidate epoch, ttl ms.
 */
export const EPOCH_SCRIPT = `
local created = redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1
local ttl = redis.call('PTTL', KEYS[1])
if created or (ttl > 0 and ttl < tonumber(ARGV[2])) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('HGET', KEYS[1], 'epoch')
`;

/**
 * The live tails' periodic check: the log's epoch and last seq as the primary has them,
 * and a longer life for the meta once less than half of `ttl` is left, so the epoch a
 * live room's members hold cannot expire under them. KEYS: meta. ARGV: ttl ms.
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
