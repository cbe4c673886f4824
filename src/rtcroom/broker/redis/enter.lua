-- KEYS: room zset, rooms set, peer hash, node members, resume key
-- ARGV: room, peer id, name, identity, node, max peers, max rooms, key digest, via,
--   grants (space separated), since (Unix time of the join), state (JSON or "")
-- Returns the entry's number, 1 if the room starts with this peer (else 0),
-- then id, name, identity, via, state of each peer already there; {-1} if the room is full, {-2} if the server is.
-- needs: seq
local size = redis.call('ZCARD', KEYS[1])
if size >= tonumber(ARGV[6]) then return {-1} end
if size == 0 and redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[7]) then return {-2} end
local seq = next_seq()
local result = {seq, size == 0 and 1 or 0}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local info = redis.call('HMGET', 'rtcroom:peer:' .. id, 'name', 'identity', 'via', 'state')
  table.insert(result, id)
  table.insert(result, info[1] or '')
  table.insert(result, info[2] or '')
  table.insert(result, info[3] or '')
  table.insert(result, info[4] or '')
end
redis.call('ZADD', KEYS[1], seq, ARGV[2])
redis.call('HSET', KEYS[3], 'room', ARGV[1], 'name', ARGV[3], 'identity', ARGV[4],
  'node', ARGV[5], 'key', ARGV[8], 'via', ARGV[9], 'grants', ARGV[10], 'since', ARGV[11],
  'state', ARGV[12])
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('SET', KEYS[5], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return result
