/**
 * The primary's replication id, read inside a script (Redis 7 lets scripts call `INFO`): a
 * restarted or promoted primary has a new one, and the dataset must be checked before the
 * next write (see {@link VALIDATE_SCRIPT}).
 */
const REPLICATION_ID = `string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)')`;

/**
 * The append, atomically on the primary (G1 + G2): the dedup check, the per-room counter
 * and the XADD happen in one script, so seq is gap-free and a retried event_id is stored
 * once. Also trims by count (MAXLEN) and by age (entries carry their append time `t`).
 *
 * Each entry carries its log's epoch (`g`), so a live reader can tell an entry of a new
 * incarnation (the primary lost its data and the counter started again) from the next
 * entry of the log it follows, and stop before delivering it.
 *
 * Outside Cluster mode (a 4th key, the dataset hash) the script also refuses to write
 * while the dataset is unchecked (no dataset key: a new or flushed server; another
 * replication id than the one last checked: a restart or a failover), so that nothing is
 * written before {@link VALIDATE_SCRIPT} has compared the dataset as loaded with what
 * writers saw; and it counts every write in the dataset (`writes`, also stamped `w` on
 * the entry), the count writers and readers compare after a restart.
 *
 * No key lives forever: the stream expires `max age` after its last append (by then every
 * entry is past retention), and the meta hash (epoch and counter) `meta ttl` after it,
 * which is longer, so the counter goes on after the events aged out and the meta never
 * expires before its stream. Reads and live tails extend it while the room is in use.
 *
 * KEYS: stream, meta, dedup key, [dataset]. ARGV: envelope JSON, dedup window ms, max
 * events, epoch to use if the log is new, max age ms, now ms, wake-up channel ('' for
 * none), meta ttl ms. Returns { seq, status (0 stored, 1 duplicate, 2 check the dataset
 * first), log epoch, dataset id, writes, replication id }.
 */
export const APPEND_SCRIPT = `
local dataset, replid, writes = 'cluster', 'cluster', 0
if KEYS[4] then
  replid = ${REPLICATION_ID}
  local d = redis.call('HMGET', KEYS[4], 'id', 'replid')
  if not d[1] or d[2] ~= replid then return {0, 2, '', '', 0, replid} end
  dataset = d[1]
end
local epoch = redis.call('HGET', KEYS[2], 'epoch')
local known = redis.call('GET', KEYS[3])
if known and epoch then return {tonumber(known), 1, epoch, dataset, 0, replid} end
if not epoch then
  epoch = ARGV[4]
  redis.call('HSET', KEYS[2], 'epoch', epoch)
end
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
if KEYS[4] then
  writes = redis.call('HINCRBY', KEYS[4], 'writes', 1)
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], seq .. '-0', 'e', ARGV[1], 't', ARGV[6], 'g', epoch, 'w', writes)
else
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], seq .. '-0', 'e', ARGV[1], 't', ARGV[6], 'g', epoch)
end
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
return {seq, 0, epoch, dataset, writes, replid}
`;

/**
 * Checks the dataset the primary serves, and adopts it for writes. The dataset hash holds
 * its `id` (the second part of every epoch), its `writes` count, the `replid` it was last
 * checked under, and `adopted`: the last few replication ids it was adopted under since
 * its id was set, each with the count it held then (`<replid>:<writes>,…`, oldest first).
 * - No hash: a new server, or a flushed or replaced dataset. A new id: every log starts a
 *   new epoch (its events, if any, are not the ones members hold).
 * - Another replication id than the last: the primary restarted (with its data, or with
 *   an older snapshot) or a replica was promoted. The dataset is adopted as loaded.
 * - The caller, under the same id, saw the count reach `writes seen` under a replication
 *   id, and the dataset held fewer at an adoption since (or holds fewer now, under the
 *   same replication id): a write it saw acknowledged or delivered is gone. A new id, so
 *   every resume across the loss is told `recovered: false`. When its replication id is
 *   too old to be in the list, any adoption with fewer counts (the safe side).
 * A restart or failover that kept every write the callers saw keeps the id: no epoch
 * changes. A caller that knew another id learns the current one and tells its tails.
 * KEYS: dataset. ARGV: candidate id, the caller's id, the replication id it checked, the
 * writes it saw under it. Returns { id, replication id, writes }.
 */
export const VALIDATE_SCRIPT = `
local replid = ${REPLICATION_ID}
local d = redis.call('HMGET', KEYS[1], 'id', 'replid', 'writes', 'adopted')
if not d[1] then
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'replid', replid, 'writes', 0, 'adopted', replid .. ':0')
  return {ARGV[1], replid, 0}
end
local id, writes, adopted = d[1], tonumber(d[3] or '0'), d[4] or ''
if d[2] ~= replid then
  local list = {}
  for entry in string.gmatch(adopted, '[^,]+') do list[#list + 1] = entry end
  list[#list + 1] = replid .. ':' .. writes
  while #list > 8 do table.remove(list, 1) end
  adopted = table.concat(list, ',')
  redis.call('HSET', KEYS[1], 'replid', replid, 'adopted', adopted)
end
if ARGV[2] ~= id then return {id, replid, writes} end
local seen = tonumber(ARGV[4])
local lost = false
if ARGV[3] == replid then
  lost = seen > writes
else
  local found = false
  for entry in string.gmatch(adopted, '[^,]+') do
    local at, base = string.match(entry, '^(%x+):(%d+)$')
    if found or at == ARGV[3] then
      if found and tonumber(base) < seen then lost = true end
      found = true
    end
  end
  if not found then
    for base in string.gmatch(adopted, ':(%d+)') do
      if tonumber(base) < seen then lost = true end
    end
  end
end
if lost then
  id = ARGV[1]
  redis.call('HSET', KEYS[1], 'id', id, 'adopted', replid .. ':' .. writes)
end
return {id, replid, writes}
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
 * Keeps a tailed log's epoch alive: its meta lives `ttl` from now unless it already lives
 * longer (a published log's), so the epoch a live room's members hold cannot expire under
 * them. Called once per tailed log every quarter to half of `ttl`, never every check.
 * Returns the log's epoch and last seq as the primary has them. KEYS: meta. ARGV: ttl ms.
 * Returns { epoch or nil, seq or nil }.
 */
export const CHECK_SCRIPT = `
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 and ttl < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
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
