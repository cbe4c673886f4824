-- KEYS: peer hash; ARGV: room, state (JSON, "" for the default). Sets the
-- peer's participant state if it is still in that room; 1 if it was.
if redis.call('HGET', KEYS[1], 'room') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2])
return 1
