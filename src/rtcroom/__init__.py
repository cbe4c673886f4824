"""rtcroom: WebRTC rooms with Python."""

from __future__ import annotations

__version__ = "0.1.0"

from .auth import mint_token

__all__ = ["__version__", "mint_token"]
