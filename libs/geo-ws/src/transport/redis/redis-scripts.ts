/**
 * The append, atomically on the primary (G1 + G2): the dedup check, the per-room counter
 * and the XADD happen in one script, so seq is gap-free and a retried event_id is stored
 * once. Also trims by count (MAXLEN) and by age (entries carry their append time `t`).
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
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], seq .. '-0', 'e', ARGV[1], 't', ARGV[6])
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

/** Returns the log's epoch, creating it if the log is new. KEYS: meta. ARGV: candidate epoch. */
export const EPOCH_SCRIPT = `
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
return redis.call('HGET', KEYS[1], 'epoch')
`;

/** Resets a log: a new epoch, seq back to 0, the stream gone. KEYS: stream, meta. ARGV: new epoch. */
export const RESET_SCRIPT = `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'epoch', ARGV[1], 'seq', 0)
return 1
`;
