"""The Flask-SocketIO tutorial's signaling server on gevent, rebuilt for the benchmarks.

Its published code (Flask, Flask-SocketIO, `pip install gevent` "for
production"), with two changes: the port comes from the command line and
the print() of every message is left out (it would only slow it down).
Flask-SocketIO picks gevent by itself when gevent is installed; the
monkey-patching is what gevent's documentation asks for.

    python bench/servers/tutorial_flask_socketio.py PORT
"""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

from flask import Flask, request  # noqa: E402
from flask_socketio import SocketIO, emit, join_room  # noqa: E402

app = Flask(__name__)
app.secret_key = "random secret key!"
socketio = SocketIO(app, cors_allowed_origins="*")


@socketio.on("join")
def join(message):
    username = message["username"]
    room = message["room"]
    join_room(room)
    emit("ready", {username: username}, to=room, skip_sid=request.sid)


@socketio.on("data")
def transfer_data(message):
    room = message["room"]
    data = message["data"]
    emit("data", data, to=room, skip_sid=request.sid)


if __name__ == "__main__":
    socketio.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_output=False)
