"""The seeds' python-socketio signaling server, rebuilt for the benchmarks.

The aiohttp tutorial's server (python-socketio's AsyncServer on aiohttp)
with the Flask-SocketIO tutorial's `join` handler, so that pairs of clients
get rooms of their own (the aiohttp tutorial has one room for everyone);
`data` is relayed to the rest of the room as both tutorials do. Their
print() of every message is left out: it would only slow them down.

    python bench/servers/tutorial_socketio.py PORT
"""

import sys

import socketio
from aiohttp import web

sio = socketio.AsyncServer(cors_allowed_origins="*")
app = web.Application()
sio.attach(app)


@sio.event
async def join(sid, message):
    room = message["room"]
    await sio.enter_room(sid, room)
    await sio.emit("ready", {message["username"]: message["username"]}, to=room, skip_sid=sid)


@sio.event
async def data(sid, message):
    await sio.emit("data", message["data"], to=message["room"], skip_sid=sid)


if __name__ == "__main__":
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
