"""rtcroom: WebRTC rooms with Python.

`RoomServer` is rtcroom as one object, an ASGI app to run or mount inside a
Python web app, with hooks for the app's own rules (docs/embedding.md).
"""

from __future__ import annotations

__version__ = "0.1.0"

from .app import RoomServer
from .auth import mint_token
from .broker.interface import LeaveReason
from .config import Config, ConfigError, from_env
from .hooks import Admit, Departure, Forbidden, JoinRequest, Message, Refusal, Unauthorized
from .protocol import PeerInfo

__all__ = [
    "Admit",
    "Config",
    "ConfigError",
    "Departure",
    "Forbidden",
    "JoinRequest",
    "LeaveReason",
    "Message",
    "PeerInfo",
    "Refusal",
    "RoomServer",
    "Unauthorized",
    "__version__",
    "from_env",
    "mint_token",
]
