-- KEYS: resume key; ARGV: room, claiming node. Returns peer id, old node,
-- name, identity, the number of its entry, via and state; empty if there is nothing to claim.
local id = redis.call('GET', KEYS[1])
if not id then return {} end
local peer = 'rtcroom:peer:' .. id
local info = redis.call('HMGET', peer, 'room', 'node', 'name', 'identity', 'via', 'state')
if info[1] ~= ARGV[1] or not info[2] or info[2] == ARGV[2] then return {} end
redis.call('HSET', peer, 'node', ARGV[2])
redis.call('SREM', 'rtcroom:members:' .. info[2], id)
redis.call('SADD', 'rtcroom:members:' .. ARGV[2], id)
local seq = redis.call('ZSCORE', 'rtcroom:room:' .. ARGV[1], id)
return {id, info[2], info[3] or '', info[4] or '', seq or '0', info[5] or '', info[6] or ''}
