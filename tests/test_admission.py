"""The rules at the door, without a socket: Origin, the client's address, per-address limits.

test_serve_faults.py and test_doors.py check the same through real servers.
"""

from __future__ import annotations

from rtcroom.admission import Admission
from rtcroom.config import Config


def test_origins_a_browser_may_connect_from() -> None:
    admission = Admission(Config(allowed_origins=("https://app.example.org",)))
    allowed = admission.origin_allowed
    assert allowed(None, "call.example.org")  # not a browser
    assert allowed("https://call.example.org", "call.example.org")  # the server's own
    assert allowed("https://CALL.example.org", "call.example.org")
    assert allowed("http://localhost:3000", "call.example.org")
    assert allowed("http://127.0.0.1:8080", "call.example.org")
    assert allowed("https://app.example.org", "call.example.org")  # listed
    assert not allowed("https://evil.example", "call.example.org")
    assert not allowed("https://call.example.org.evil.example", "call.example.org")
    assert not allowed("null", "call.example.org")  # a sandboxed page or a file
    assert not allowed("https://call.example.org", None)
    assert Admission(Config(allowed_origins=("*",))).origin_allowed("https://any.example", None)


def test_refusals_before_the_upgrade() -> None:
    admission = Admission(Config())
    assert admission.refusal("https://evil.example", "call.example.org") == "Forbidden origin"
    assert admission.refusal(None, "call.example.org") is None
    admission.draining = True
    assert admission.refusal(None, "call.example.org") == "The server is restarting"


def test_the_client_address_behind_trusted_proxies() -> None:
    admission = Admission(Config(trusted_proxies=("10.0.0.0/24", "127.0.0.1")))
    address = admission.client_address
    assert address("203.0.113.9", None) == "203.0.113.9"
    # An untrusted peer's X-Forwarded-For is anyone's to forge.
    assert address("203.0.113.9", "198.51.100.1") == "203.0.113.9"
    # Behind trusted proxies: the nearest hop that is not one of them.
    assert address("10.0.0.2", "198.51.100.1") == "198.51.100.1"
    assert address("127.0.0.1", "198.51.100.7, 198.51.100.1, 10.0.0.5") == "198.51.100.1"
    assert address("10.0.0.2", "10.0.0.3, 10.0.0.4") == "10.0.0.3"
    assert address("10.0.0.2", " , ") == "10.0.0.2"
    # An address a server already took from the header stays as it is.
    assert address("198.51.100.1", "198.51.100.1") == "198.51.100.1"
    everyone = Admission(Config(trusted_proxies=("*",)))
    assert everyone.client_address("203.0.113.9", "198.51.100.1") == "198.51.100.1"


def test_connections_per_address() -> None:
    admission = Admission(Config(max_connections_per_address=2))
    assert admission.admit("198.51.100.1") is None
    assert admission.admit("198.51.100.1") is None
    refused = admission.admit("198.51.100.1")
    assert refused is not None
    assert '"code":"rate-limited"' in refused and "more than 2 connections" in refused
    assert admission.admit("198.51.100.2") is None  # another address has its own count
