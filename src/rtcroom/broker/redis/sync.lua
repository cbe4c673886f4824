-- ARGV: node, then room, id, name, identity, key digest, number, via for each
-- local peer. Makes Redis agree with the node: writes back missing peers,
-- removes the node's peers that are no longer local; returns those as room,
-- peer id, number, emptied, name, identity.
-- needs: drop
local node = ARGV[1]
local here = {}
for i = 2, #ARGV, 7 do
  local room, id = ARGV[i], ARGV[i + 1]
  here[id] = true
  local peer = 'rtcroom:peer:' .. id
  if not redis.call('HGET', peer, 'node') then
    redis.call('ZADD', 'rtcroom:room:' .. room, ARGV[i + 5], id)
    redis.call('HSET', peer, 'room', room, 'name', ARGV[i + 2], 'identity', ARGV[i + 3],
      'node', node, 'key', ARGV[i + 4], 'via', ARGV[i + 6])
    redis.call('SET', 'rtcroom:resume:' .. ARGV[i + 4], id)
    redis.call('SADD', 'rtcroom:rooms', room)
    redis.call('SADD', 'rtcroom:members:' .. node, id)
  end
end
return drop_all(node, here)
