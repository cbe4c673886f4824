"""Standard Webhooks signatures (https://www.standardwebhooks.com): pure computation.

The secret is `whsec_` and the base64 of 24 to 64 random bytes. Each attempt
carries `webhook-id` (the event's id, the same on every retry: receivers
deduplicate on it), `webhook-timestamp` (Unix seconds of the attempt) and
`webhook-signature`: `v1,` and the base64 of HMAC-SHA256(secret,
"{id}.{timestamp}.{body}").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Final

PREFIX: Final = "whsec_"
MIN_BYTES: Final = 24
MAX_BYTES: Final = 64
HOW_TO_MAKE: Final = (
    'python -c "import base64, secrets; '
    "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""
)


class SecretError(ValueError):
    """A webhook secret not in the whsec_ format. Never says what the secret is."""


def parse_secret(secret: str) -> bytes:
    """The key bytes of a `whsec_...` secret."""
    if not secret.startswith(PREFIX):
        raise SecretError(f"a webhook secret starts with whsec_; make one with {HOW_TO_MAKE}")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except binascii.Error:
        raise SecretError("the part after whsec_ is not base64") from None
    if not MIN_BYTES <= len(key) <= MAX_BYTES:
        raise SecretError(
            f"the secret holds {len(key)} bytes: use {MIN_BYTES} to {MAX_BYTES} ({HOW_TO_MAKE})"
        )
    return key


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header's value."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(key: bytes, message_id: str, timestamp: int, body: bytes) -> list[tuple[str, str]]:
    """The three Standard Webhooks headers of one attempt."""
    return [
        ("webhook-id", message_id),
        ("webhook-timestamp", str(timestamp)),
        ("webhook-signature", sign(key, message_id, timestamp, body)),
    ]
