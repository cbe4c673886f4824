"""The server's log: text for people, or JSON lines for machines (--log-format).

What happens to rooms and clients is logged as *events*: a record whose
`event` names what happened (join, leave, refused, resume, drain,
broker-down, broker-up, room-started, room-finished) with its fields
(room, peer, name, reason, code, address). In text they read as a
sentence; in JSON each is one object per line:

    {"time": "2026-12-04T09:30:00.123Z", "level": "info", "event": "join",
     "message": "Ann joined standup", "room": "standup", "peer": "p1a2...", ...}

Secrets never reach the output: the configured ones (token, TURN, SFU
secrets) and anything shaped like an access token are replaced by
"[redacted]" in every line, whatever logged it.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable
from typing import Any

import msgspec

from .broker.interface import LeaveReason
from .config import LOG_FORMATS
from .protocol import PeerInfo

log = logging.getLogger("rtcroom")

# The fields an event may carry, in the order JSON lines show them.
FIELDS = ("room", "peer", "name", "identity", "reason", "code", "address", "count", "url")
# A JWT (three base64url parts, the first two JSON objects: "eyJ"...).
_TOKEN = re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{16,}")
REDACTED = "[redacted]"
# Values JSON cannot hold (an exception in a field) are written as their str().
_ENCODER = msgspec.json.Encoder(enc_hook=str)


def event(
    kind: str, message: str, /, *args: object, level: int = logging.INFO, **fields: Any
) -> None:
    """Log the event `kind`: `message % args` in text, with `fields` in JSON."""
    if log.isEnabledFor(level):
        log.log(level, message, *args, extra={"event": kind, "fields": fields})


class Redactor(logging.Filter):
    """Replaces the secrets it knows, and anything shaped like a token, in every record."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        # The pattern only where it could match: most lines hold no token.
        return _TOKEN.sub(REDACTED, text) if "eyJ" in text else text

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.error":
            # uvicorn's general logger (start, stop, bind), not only errors.
            record.name = "uvicorn"
        message = self.redact(record.getMessage())
        record.msg, record.args = message, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        fields = getattr(record, "fields", None)
        if fields:
            record.fields = {
                k: self.redact(v) if isinstance(v, str) else v for k, v in fields.items()
            }
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, event, message, logger, the event's fields."""

    def __init__(self, pid: bool = False) -> None:
        super().__init__()
        self.pid = pid
        # The last second formatted, and its text (most lines share it).
        self._second = -1
        self._seconds = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        seconds = self._seconds
        line: dict[str, Any] = {
            "time": f"{seconds}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": getattr(record, "event", "log"),
            "message": record.getMessage(),
            "logger": record.name,
        }
        if self.pid:
            line["pid"] = os.getpid()
        fields = getattr(record, "fields", None) or {}
        for key in FIELDS:
            if fields.get(key) is not None:
                line[key] = fields[key]
        for key, value in fields.items():
            if key not in line and value is not None:
                line[key] = value
        if record.exc_info or record.exc_text:
            line["traceback"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return _ENCODER.encode(line).decode()


def configure(
    level: str, format: str = "text", secrets: Iterable[str | None] = (), pid: bool = False
) -> None:
    """Set up the root logger for `rtcroom serve` (and the libraries' loggers under it)."""
    if format not in LOG_FORMATS:
        raise ValueError(f"log format {format!r} is not one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler()
    handler.addFilter(Redactor(secrets))
    if format == "json":
        handler.setFormatter(JsonFormatter(pid))
    else:
        where = "[%(process)d]" if pid else ""
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(name)s{where} %(levelname)s %(message)s")
        )
    # What no line shows, not looked up for each (the logging docs' "Optimization").
    logging._srcfile = None  # the caller's file and line
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging.logProcesses = pid
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's loggers have handlers of their own: through ours instead.
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


class PresenceLog:
    """RoomEvents as log events: leave (with its reason), room-started, room-finished."""

    def started(self, room: str) -> None:
        event("room-started", "room %s started", room, room=room)

    def joined(self, room: str, peer: PeerInfo) -> None:
        # Logged by the connection, with its address (connection.py).
        pass

    def left(self, room: str, peer: PeerInfo, reason: LeaveReason) -> None:
        event(
            "leave",
            "%s left %s (%s)",
            peer.name,
            room,
            reason.value,
            room=room,
            peer=peer.id,
            name=peer.name,
            identity=peer.identity,
            reason=reason.value,
        )

    def finished(self, room: str) -> None:
        event("room-finished", "room %s finished", room, room=room)
