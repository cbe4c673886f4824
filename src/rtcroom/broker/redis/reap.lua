-- ARGV: the dead node. Returns room, peer id, number, emptied, name,
-- identity for each peer to announce as left; empty if the node is alive or another node reaped it first.
-- needs: drop
local node = ARGV[1]
if redis.call('EXISTS', 'rtcroom:alive:' .. node) == 1 then return {} end
if redis.call('SREM', 'rtcroom:nodes', node) == 0 then return {} end
redis.call('SET', 'rtcroom:reaped:' .. node, '1', 'EX', 86400)
local result = drop_all(node, {})
redis.call('DEL', 'rtcroom:members:' .. node)
return result
