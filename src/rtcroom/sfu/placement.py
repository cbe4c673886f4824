"""Which Janus node serves which room: the least-loaded node that is up.

Every member of a room must reach the same node, whichever rtcroom process
serves it: with --broker redis://..., the placement is kept in Redis
(RedisPlacement), one atomic script per change; otherwise in this process
(LocalPlacement). A node's load is the number of rooms placed on it.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..broker import Unavailable


class Placement(Protocol):
    async def node_of(self, room: str) -> str | None:
        """The URL of the node serving `room`, or None: the SFU serves it nowhere."""
        ...

    async def place(self, room: str, candidates: list[str]) -> str:
        """The node of `room`: where it is, if that is a candidate, else the
        candidate serving the fewest rooms (the first of those)."""
        ...

    async def forget(self, room: str, url: str | None = None) -> None:
        """`room` is served nowhere (by `url` no more, if given)."""
        ...


class LocalPlacement:
    """Placement for one process."""

    def __init__(self) -> None:
        self.rooms: dict[str, str] = {}

    async def node_of(self, room: str) -> str | None:
        return self.rooms.get(room)

    async def place(self, room: str, candidates: list[str]) -> str:
        current = self.rooms.get(room)
        if current in candidates:
            return current
        load = dict.fromkeys(candidates, 0)
        for url in self.rooms.values():
            if url in load:
                load[url] += 1
        chosen = min(candidates, key=lambda url: (load[url], candidates.index(url)))
        self.rooms[room] = chosen
        return chosen

    async def forget(self, room: str, url: str | None = None) -> None:
        if url is None or self.rooms.get(room) == url:
            self.rooms.pop(room, None)


ROOM_KEY = "rtcroom:sfu:room:"
LOAD_KEY = "rtcroom:sfu:load"

# KEYS: the room's key, the load hash. ARGV: the candidates, in order.
PLACE = """
local current = redis.call('GET', KEYS[1])
if current then
  for i = 1, #ARGV do
    if ARGV[i] == current then return current end
  end
  redis.call('HINCRBY', KEYS[2], current, -1)
end
local best, lowest = nil, nil
for i = 1, #ARGV do
  local load = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
  if lowest == nil or load < lowest then best, lowest = ARGV[i], load end
end
redis.call('SET', KEYS[1], best)
redis.call('HINCRBY', KEYS[2], best, 1)
return best
"""

# KEYS: the room's key, the load hash. ARGV: the node's URL, or "" for any.
FORGET = """
local current = redis.call('GET', KEYS[1])
if current and (ARGV[1] == '' or ARGV[1] == current) then
  redis.call('DEL', KEYS[1])
  redis.call('HINCRBY', KEYS[2], current, -1)
end
return current
"""


class RedisPlacement:
    """Placement shared by every rtcroom process of one Redis (the broker's)."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._place = redis.register_script(PLACE)
        self._forget = redis.register_script(FORGET)

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except Exception as exc:  # redis-py's errors, and the socket's
            raise Unavailable("the rooms service is unavailable: try again shortly") from exc

    async def node_of(self, room: str) -> str | None:
        value = await self._call(self.redis.get(ROOM_KEY + room))
        return str(value) if value is not None else None

    async def place(self, room: str, candidates: list[str]) -> str:
        keys = [ROOM_KEY + room, LOAD_KEY]
        return str(await self._call(self._place(keys=keys, args=candidates)))

    async def forget(self, room: str, url: str | None = None) -> None:
        await self._call(self._forget(keys=[ROOM_KEY + room, LOAD_KEY], args=[url or ""]))
