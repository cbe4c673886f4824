"""One HTTP/1.1 POST with h11 (uvicorn's own dependency): what a webhook attempt sends.

A fresh connection per attempt, closed after the answer: endpoints are few
and events rare next to signaling, and nothing lingers when one dies.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

import h11

_TLS: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    global _TLS
    if _TLS is None:
        _TLS = ssl.create_default_context()
    return _TLS


async def post(url: str, body: bytes, headers: list[tuple[str, str]], timeout: float) -> int:
    """POST `body` (JSON) to `url`; the answer's status. Raises OSError or TimeoutError."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, ssl=_tls() if secure else None)
        try:
            connection = h11.Connection(h11.CLIENT)
            request = h11.Request(
                method="POST",
                target=target,
                headers=[
                    ("Host", parts.netloc),
                    ("User-Agent", "rtcroom-webhooks"),
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    ("Connection", "close"),
                    *headers,
                ],
            )
            writer.write(
                connection.send(request)
                + connection.send(h11.Data(data=body))
                + connection.send(h11.EndOfMessage())
            )
            await writer.drain()
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    connection.receive_data(await reader.read(65536))
                    continue
                if isinstance(event, h11.Response):
                    return int(event.status_code)
                if isinstance(event, h11.ConnectionClosed):
                    raise ConnectionError("the endpoint closed the connection without answering")
        except h11.RemoteProtocolError as exc:
            raise ConnectionError(f"the endpoint's answer is not HTTP: {exc}") from None
        finally:
            writer.close()
