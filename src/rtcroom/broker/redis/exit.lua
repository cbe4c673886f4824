-- ARGV: peer id, node. Returns the change's number and 1 if that emptied the
-- room (else 0); {0, 0} if nothing changed.
-- Only the node that holds the peer removes it (after a handoff to another
-- node, the old one's late exit must change nothing).
-- needs: drop
local owner = redis.call('HGET', 'rtcroom:peer:' .. ARGV[1], 'node')
if owner and owner ~= ARGV[2] then return {0, 0} end
local gone = drop(ARGV[1], ARGV[2])
if gone then return {gone[2], gone[3]} end
return {0, 0}
