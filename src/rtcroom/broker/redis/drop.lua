-- Shared by the scripts that remove a peer: its presence, its resume key,
-- its node's member entry; the room leaves the rooms set when it empties.
-- Returns the room, the change's number, 1 if that emptied the room (else 0),
-- and the peer's name and identity; false if it was not there.
-- needs: seq
local function drop(id, node)
  local peer = 'rtcroom:peer:' .. id
  local room = redis.call('HGET', peer, 'room')
  local info = redis.call('HMGET', peer, 'key', 'name', 'identity')
  local digest = info[1]
  if digest then redis.call('DEL', 'rtcroom:resume:' .. digest) end
  redis.call('DEL', peer)
  redis.call('SREM', 'rtcroom:members:' .. node, id)
  if not room then return false end
  local removed = redis.call('ZREM', 'rtcroom:room:' .. room, id)
  local emptied = 0
  if redis.call('ZCARD', 'rtcroom:room:' .. room) == 0 then
    redis.call('SREM', 'rtcroom:rooms', room)
    emptied = removed
  end
  if removed == 0 then return false end
  return {room, next_seq(), emptied, info[2] or '', info[3] or ''}
end

-- Drop the node's peers but those in `keep`; room, peer id, number, emptied,
-- name and identity of each.
local function drop_all(node, keep)
  local result = {}
  for _, id in ipairs(redis.call('SMEMBERS', 'rtcroom:members:' .. node)) do
    local gone = not keep[id] and drop(id, node)
    if gone then
      table.insert(result, gone[1])
      table.insert(result, id)
      table.insert(result, gone[2])
      table.insert(result, gone[3])
      table.insert(result, gone[4])
      table.insert(result, gone[5])
    end
  end
  return result
end
