-- KEYS: nodes set, alive key, tombstone; ARGV: node, TTL in ms.
-- 0: known; 1: unknown (first beat, or Redis lost its data); 2: reaped.
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then return 2 end
return 1
