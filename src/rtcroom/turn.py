"""Short-lived TURN credentials and the matching coturn configuration.

Credentials follow the TURN REST API scheme that coturn implements with
`use-auth-secret` (draft-uberti-behave-turn-rest-00, section 2.2): the
username is `<unix expiry>:<peer id>`, the password is
base64(HMAC-SHA1(secret, username)). coturn checks the HMAC and the expiry;
nothing is stored anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .protocol import IceServer


def mint(secret: str, peer_id: str, ttl: int, now: float | None = None) -> tuple[str, str]:
    """(username, credential) valid for `ttl` seconds from `now`."""
    expiry = int(now if now is not None else time.time()) + ttl
    username = f"{expiry}:{peer_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


@dataclass(frozen=True)
class IceConfig:
    """What each peer gets in `joined.iceServers`, and when to renew it."""

    stun_urls: Sequence[str] = ()
    turn_urls: Sequence[str] = ()
    turn_secret: str | None = None
    turn_ttl: int = 3600
    other_urls: Sequence[str] = ()  # --ice-server: handed out as they are
    renew_after: float | None = None  # default: at 80% of turn_ttl

    def servers_for(self, peer_id: str, now: float | None = None) -> list[IceServer]:
        servers = [IceServer(urls=url) for url in (*self.other_urls, *self.stun_urls)]
        if self.turn_urls:
            if self.turn_secret:
                username, credential = mint(self.turn_secret, peer_id, self.turn_ttl, now)
                servers.append(
                    IceServer(urls=list(self.turn_urls), username=username, credential=credential)
                )
            else:
                servers.append(IceServer(urls=list(self.turn_urls)))
        return servers

    @property
    def renewal_period(self) -> float | None:
        """Seconds between fresh credentials for a connected peer (before they expire)."""
        if not (self.turn_urls and self.turn_secret):
            return None
        if self.renew_after is not None:
            return self.renew_after
        return max(1.0, self.turn_ttl * 0.8)


# Peer address ranges a TURN server must never relay to: loopback, private
# networks, link-local (cloud metadata at 169.254.169.254), carrier-grade NAT,
# benchmarking, multicast and reserved space (RFC 6890 special-purpose ranges).
DENIED_PEER_RANGES: tuple[tuple[str, str], ...] = (
    ("0.0.0.0-0.255.255.255", "'this' network (RFC 6890)"),
    ("10.0.0.0-10.255.255.255", "private network (RFC 1918)"),
    ("100.64.0.0-100.127.255.255", "carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0-127.255.255.255", "loopback: the TURN host itself"),
    ("169.254.0.0-169.254.255.255", "link-local, incl. cloud metadata 169.254.169.254"),
    ("172.16.0.0-172.31.255.255", "private network (RFC 1918)"),
    ("192.0.0.0-192.0.0.255", "IETF protocol assignments"),
    ("192.0.2.0-192.0.2.255", "documentation (TEST-NET-1)"),
    ("192.168.0.0-192.168.255.255", "private network (RFC 1918)"),
    ("198.18.0.0-198.19.255.255", "benchmarking (RFC 2544)"),
    ("198.51.100.0-198.51.100.255", "documentation (TEST-NET-2)"),
    ("203.0.113.0-203.0.113.255", "documentation (TEST-NET-3)"),
    ("224.0.0.0-255.255.255.255", "multicast and reserved"),
    ("::1", "IPv6 loopback"),
    ("::ffff:0.0.0.0-::ffff:255.255.255.255", "IPv4-mapped IPv6: would bypass the rules above"),
    ("64:ff9b::-64:ff9b::ffff:ffff", "NAT64: would bypass the rules above"),
    ("fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "IPv6 unique local (private)"),
    ("fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "IPv6 link-local"),
)


def coturn_config(
    *,
    secret: str,
    realm: str,
    listening_ip: str,
    relay_ip: str,
    external_ip: str | None = None,
    port: int = 3478,
    tls_port: int = 5349,
    min_port: int = 49160,
    max_port: int = 49200,
    total_quota: int = 300,
    user_quota: int = 12,
    cert: str | None = None,
    pkey: str | None = None,
) -> str:
    """A hardened coturn configuration that accepts rtcroom's credentials."""
    lines = [
        "# coturn configuration for rtcroom, written by `rtcroom turn-config`.",
        "# Install it as /etc/rtcroom/turnserver.conf for rtcroom-coturn.service (docs/deploy.md).",
        "",
        "# Where coturn listens, and the address it relays from.",
        f"listening-port={port}  # STUN/TURN over UDP and TCP",
        f"listening-ip={listening_ip}  # the interface clients reach",
        f"relay-ip={relay_ip}  # the address relayed media leaves from",
    ]
    if external_ip:
        lines.append(f"external-ip={external_ip}  # public address, when behind 1:1 NAT")
    if cert and pkey:
        lines += [
            f"tls-listening-port={tls_port}  # TURN over TLS (turns:), crosses strict firewalls",
            f"cert={cert}  # TLS certificate (the same one as the web server's will do)",
            f"pkey={pkey}  # its private key",
            "no-tlsv1  # only TLS 1.2 and newer",
            "no-tlsv1_1  # nor TLS 1.1",
        ]
    else:
        lines.append("no-tls  # no certificate given: plain UDP/TCP only")
        lines.append("no-dtls  # no certificate given: no DTLS listener")
    lines += [
        f"min-port={min_port}  # relay ports: open this UDP range in the firewall",
        f"max-port={max_port}  # last relay port",
        "",
        "# Authentication: short-lived credentials minted by rtcroom (TURN REST API).",
        "use-auth-secret  # HMAC-SHA1 of '<expiry>:<peer id>', checked with the secret below",
        f"static-auth-secret={secret}  # the same value as rtcroom's --turn-secret",
        f"realm={realm}  # authentication realm, usually the public host name",
        "fingerprint  # add FINGERPRINT to messages, as WebRTC clients expect",
        "stale-nonce=600  # make clients re-authenticate every 10 minutes",
        "",
        "# Abuse limits.",
        f"total-quota={total_quota}  # concurrent allocations for the whole server",
        f"user-quota={user_quota}  # concurrent allocations per username (one peer)",
        "no-multicast-peers  # never relay to multicast addresses",
        "no-tcp-relay  # WebRTC relays UDP; refuse TCP relay to arbitrary hosts",
        "no-cli  # no telnet admin console",
        "",
        "# Never relay into private, loopback, link-local or reserved space: a TURN",
        "# server is otherwise an open door into the network it runs in.",
    ]
    lines += [f"denied-peer-ip={spec}  # {why}" for spec, why in DENIED_PEER_RANGES]
    lines += ["", "# Logs go to syslog; credentials never appear in them.", "syslog", ""]
    return "\n".join(_comments_above(lines))


def _comments_above(lines: list[str]) -> list[str]:
    """coturn reads `key=value  # note` as part of the value: put each note on its own line."""
    out: list[str] = []
    for line in lines:
        setting, sep, note = line.partition("  # ")
        if sep and not setting.startswith("#"):
            out += [f"# {note}", setting]
        else:
            out.append(line)
    return out
