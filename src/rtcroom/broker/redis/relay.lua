-- ARGV: peer id, room, envelope. One round trip: where the peer is, and the
-- envelope published to its node. 0 if it is not in that room.
local info = redis.call('HMGET', 'rtcroom:peer:' .. ARGV[1], 'room', 'node')
if info[1] ~= ARGV[2] or not info[2] then return 0 end
redis.call('PUBLISH', 'rtcroom:node:' .. info[2], ARGV[3])
return 1
