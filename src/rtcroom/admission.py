"""Who may connect, and what every connection of one server shares.

The Origin check, the client's address behind trusted proxies, the
per-address connection limit, the access-token checker, the ICE servers,
the SFU, the application's hooks, the set of open connections, and the
drain that empties it on a restart.
Every endpoint asks the same Admission, so a client meets the same rules
through whichever door it comes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .auth import Authenticator
from .broker import Broker
from .config import Config
from .hooks import Hooks
from .limits import ClientLimits
from .logs import event
from .protocol import ErrorCode, error
from .tally import TALLY

if TYPE_CHECKING:
    from .connection import Connection
    from .sfu.gateway import Sfu

log = logging.getLogger("rtcroom")

# Seconds a draining process waits for its clients to resume elsewhere.
HANDOFF_WINDOW = 3.0


class Admission:
    """The rules at the door and the connections inside, for one server."""

    def __init__(self, config: Config, sfu: Sfu | None = None, hooks: Hooks | None = None) -> None:
        self.config = config
        # The SFU that serves large rooms (--sfu), shared by every connection.
        self.sfu = sfu
        # The host application's hooks (RoomServer): none under `rtcroom serve`.
        self.hooks = hooks or Hooks()
        # False until the app's start-up ran (RoomServer.start): /ws refuses.
        self.started = True
        self.ice = config.ice_config()
        self.auth = Authenticator(config.auth_secret) if config.auth_secret else None
        self.clients = ClientLimits(
            max_connections=config.max_connections_per_address,
            joins_per_minute=config.joins_per_minute,
            join_burst=config.join_burst,
        )
        self.connections: set[Connection] = set()
        self.draining = False
        self._trust_all = "*" in config.trusted_proxies
        self._proxies = [
            ipaddress.ip_network(proxy, strict=False)
            for proxy in config.trusted_proxies
            if proxy != "*"
        ]

    # Before the upgrade

    def refusal(self, origin: str | None, host: str | None) -> str | None:
        """Why a WebSocket upgrade is refused before it starts (HTTP 403), or None."""
        if not self.origin_allowed(origin, host):
            TALLY.refusals["origin"] += 1
            event(
                "refused",
                "refused a WebSocket from origin %r",
                origin,
                code="origin",
                reason=f"origin {origin} not allowed",
            )
            return "Forbidden origin"
        if self.draining:
            return "The server is restarting"
        return None

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """The Origin check against cross-site WebSocket hijacking.

        Clients that send no Origin are not browsers and are let through;
        a browser's must be this server's own, a localhost one, or listed.
        """
        if origin is None:
            return True
        if "*" in self.config.allowed_origins or origin in self.config.allowed_origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or parts.hostname is None:
            return False
        if parts.hostname in ("localhost", "127.0.0.1", "::1"):
            return True
        return host is not None and parts.netloc.lower() == host.lower()

    def client_address(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address: the peer's, or behind trusted proxies X-Forwarded-For's.

        As uvicorn's proxy_headers does: the nearest address in
        X-Forwarded-For that is not itself a trusted proxy. Applying it to an
        address that a server already took from X-Forwarded-For changes
        nothing (that address is not a trusted proxy).
        """
        if not forwarded_for or not self._trusted(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop
        return hops[0] if hops else peer

    def _trusted(self, host: str) -> bool:
        if self._trust_all:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._proxies)

    # After the upgrade

    def admit(self, address: str) -> str | None:
        """Count a new connection from `address`; None, or the error frame for one too many.

        An admitted address is counted until release() of its Connection.
        """
        if self.clients.connect(address):
            return None
        limit = self.config.max_connections_per_address
        TALLY.refusals["connections"] += 1
        event(
            "refused",
            "refused a connection from %s: more than %d from that address",
            address,
            limit,
            code=ErrorCode.RATE_LIMITED.value,
            address=address,
            reason="connections per address",
        )
        return error(ErrorCode.RATE_LIMITED, f"more than {limit} connections from your address")

    def release(self, connection: Connection) -> None:
        """`connection` has ended: uncount it. Idempotent."""
        if connection in self.connections:
            self.connections.discard(connection)
            self.clients.disconnect(connection.address)

    # Restart

    async def drain(self, reason: str, broker: Broker, cause: str = "") -> None:
        """Refuse new joins, say bye to every client and close them all (code 1012).

        `reason` is what the clients are told (they reconnect: to this server
        once it is back, or another); `cause`, what the log says stopped us.
        With other processes sharing the rooms, the clients reconnect to one
        of them and resume there: stay until they have (or the deadline), so
        that this process can hand their peers over.
        """
        self.draining = True
        event(
            "drain",
            "%s: draining %d connections (told %r)",
            cause or "stopping",
            len(self.connections),
            reason,
            count=len(self.connections),
            reason=reason,
            cause=cause or None,
        )
        for connection in list(self.connections):
            connection.bye(reason)
        loop = asyncio.get_running_loop()
        until = loop.time() + self.config.shutdown_deadline
        while self.connections and loop.time() < until:
            await asyncio.sleep(0.05)
        if broker.shared:
            # A few seconds are enough for reconnecting clients (their first
            # attempts come within a second or two); if every process is
            # stopping, there is nobody to hand over to anyway.
            until = min(until, loop.time() + HANDOFF_WINDOW)
            while broker.suspended() and loop.time() < until:
                await asyncio.sleep(0.05)
