"""The doors a client comes through, each a thin Link around a Connection (connection.py).

websocket.py: /ws on the transport itself, under `rtcroom serve` (the fast
path); asgi.py: /ws as an ASGI route, under any ASGI server; socketio.py:
the seeds' Socket.IO clients at /socket.io/.
"""
