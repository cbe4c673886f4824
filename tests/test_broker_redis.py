"""Rooms shared by three `rtcroom serve` processes through a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import websockets
from conftest import RunningRedis, RunningServer
from test_serve import Peer


async def connect(server: RunningServer) -> Peer:
    return Peer(await websockets.connect(server.ws_url))


def three(
    start_server: Callable[..., RunningServer], redis: RunningRedis, *args: str
) -> list[RunningServer]:
    return [start_server("--broker", redis.url, *args) for _ in range(3)]


async def test_peers_on_different_processes_share_rooms(
    start_server: Callable[..., RunningServer], redis_server: RunningRedis
) -> None:
    s1, s2, s3 = three(start_server, redis_server)
    a, b, c, d = await connect(s1), await connect(s2), await connect(s3), await connect(s2)
    ja = await a.join("team", "Ann")
    jb = await b.join("team", "Bo")
    assert jb["peers"] == [{"id": ja["id"], "name": "Ann"}]
    assert await a.recv() == {"type": "peer-joined", "peer": {"id": jb["id"], "name": "Bo"}}
    jc = await c.join("team", "Cy")
    assert [p["id"] for p in jc["peers"]] == [ja["id"], jb["id"]]  # join order across processes
    await a.recv(), await b.recv()
    jd = await d.join("other", "Di")  # same process as b, another room
    assert jd["peers"] == []

    offer = {"description": {"type": "offer", "sdp": "v=0\r\n"}}
    await c.send({"type": "signal", "to": ja["id"], "data": offer})  # process 3 -> 1
    assert await a.recv() == {"type": "signal", "from": jc["id"], "data": offer}
    await a.send({"type": "signal", "to": jb["id"], "data": {"candidate": None}})  # 1 -> 2
    assert await b.recv() == {"type": "signal", "from": ja["id"], "data": {"candidate": None}}
    await a.send({"type": "broadcast", "data": {"hello": "team"}})
    for peer in (b, c):
        assert await peer.recv() == {
            "type": "broadcast",
            "from": ja["id"],
            "data": {"hello": "team"},
        }
    # Rooms stay apart: d hears nothing and cannot reach team.
    await d.send({"type": "signal", "to": ja["id"], "data": offer})
    assert (await d.recv())["code"] == "unknown-peer"
    await d.nothing()
    await a.nothing()

    await b.send({"type": "leave"})
    for peer in (a, c):
        assert await peer.recv() == {"type": "peer-left", "id": jb["id"]}
    await c.ws.close()
    assert await a.recv() == {"type": "peer-left", "id": jc["id"]}
    await d.nothing()
    for peer in (a, b, d):
        await peer.ws.close()


async def test_capacity_holds_under_concurrent_joins_across_processes(
    start_server: Callable[..., RunningServer], redis_server: RunningRedis
) -> None:
    servers = three(start_server, redis_server, "--max-peers", "10")
    peers = [await connect(servers[i % 3]) for i in range(50)]

    async def attempt(i: int, peer: Peer) -> str:
        await peer.send({"type": "join", "room": "big", "name": f"p{i}"})
        while True:
            message = await peer.recv(timeout=10)
            if message["type"] in ("joined", "error"):
                return str(message.get("code", "joined"))

    results = await asyncio.gather(*(attempt(i, p) for i, p in enumerate(peers)))
    assert results.count("joined") == 10
    assert results.count("room-full") == 40
    for peer in peers:
        await peer.ws.close()
