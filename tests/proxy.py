"""A TCP forwarder on loopback that a test can cut: a real network fault, on demand.

Pages load the app and open their WebSocket through it; `drop()` resets every
connection passing through (as a dead Wi-Fi would, without a closing
handshake), `refuse` turns new connections away until it is cleared, and
`hold()` keeps what the target sends back (a stalled server, a paused
process) until `release()`.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading


class Proxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        """Forward connections to `host`:`target_port` (set another port to move them)."""
        self.target_port = target_port
        self.host = host
        self.listener = socket.create_server((host, 0))
        self.port: int = self.listener.getsockname()[1]
        self.refuse = False
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.closed = False
        self.flowing = threading.Event()
        self.flowing.set()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refuse:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection((self.host, self.target_port))
            except OSError:
                _reset(client)
                continue
            with self.lock:
                if self.closed:  # closed while this one was being set up
                    _reset(client)
                    _reset(upstream)
                    return
                self.connections |= {client, upstream}
            for source, sink, back in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(source, sink, back), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, back: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if back:
                    self.flowing.wait()
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def drop(self) -> int:
        """Reset every open connection; return how many there were."""
        with self.lock:
            dropped = list(self.connections)
            self.connections.clear()
        for sock in dropped:
            _reset(sock)
        return len(dropped) // 2

    def hold(self) -> None:
        """Keep what the target sends from here on (requests still reach it)."""
        self.flowing.clear()

    def release(self) -> None:
        self.flowing.set()

    def close(self) -> None:
        with self.lock:
            self.closed = True
        self.release()
        self.listener.close()
        self.drop()


def _reset(sock: socket.socket) -> None:
    """End the TCP connection abruptly: no WebSocket close frame, an RST where possible."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # shutdown() also wakes the pump thread blocked in recv() on it, which
    # close() alone would not.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
