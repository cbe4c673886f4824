"""rtcroom: WebRTC rooms with Python.

`RoomServer` is rtcroom as one object, an ASGI app to run or mount inside a
Python web app, with hooks for the app's own rules (docs/embedding.md).
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import RoomServer
    from .auth import mint_token
    from .broker.interface import LeaveReason
    from .config import Config, ConfigError, from_env
    from .hooks import Admit, Departure, Forbidden, JoinRequest, Message, Refusal, Unauthorized
    from .protocol import PeerInfo

# Where each public name lives. Imported when first used, so that a command
# that needs none of them (`rtcroom --help`, `rtcroom token`) starts at once.
_WHERE = {
    "RoomServer": "app",
    "mint_token": "auth",
    "LeaveReason": "broker.interface",
    "Config": "config",
    "ConfigError": "config",
    "from_env": "config",
    "Admit": "hooks",
    "Departure": "hooks",
    "Forbidden": "hooks",
    "JoinRequest": "hooks",
    "Message": "hooks",
    "Refusal": "hooks",
    "Unauthorized": "hooks",
    "PeerInfo": "protocol",
}


def __getattr__(name: str) -> Any:  # PEP 562
    if name in _WHERE:
        import importlib

        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rtcroom' has no attribute {name!r}")


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
