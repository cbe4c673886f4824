-- Every change of presence gets a number from one sequence: microseconds of
-- Redis's clock, or one more than the last if the clock lags, so that it
-- keeps growing even when Redis lost its data. A member is told of changes
-- numbered after its own entry only: a peer-joined (or peer-left) that
-- reaches a node after a later newcomer was admitted there is not delivered
-- to that newcomer, whose joined.peers already had it right.
local function next_seq()
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local seq = math.max(now, tonumber(redis.call('GET', 'rtcroom:seq') or '0') + 1)
  redis.call('SET', 'rtcroom:seq', string.format('%.0f', seq))
  return seq
end
