"""File transfer with the web app's format (docs/protocol.md, "File transfer").

One data channel per file, label "file", protocol "rtcroom-file/1": a JSON
header, the bytes in order, a JSON "end" with the SHA-256, and the
receiver's "received" (or "cancel" from either side).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import mimetypes
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiortc import RTCDataChannel

from ..protocol import FILE_LABEL as LABEL
from ..protocol import FILE_PROTOCOL as PROTOCOL
from .room import RemotePeer, Room

# aiortc advertises (and so accepts) SCTP messages of at most 64 KiB.
CHUNK_SIZE = 64 * 1024
HIGH_WATER = 4 * 1024 * 1024
LOW_WATER = 1024 * 1024


class TransferError(Exception):
    """The transfer was cancelled or failed; `reason` says why."""


@dataclass
class Transfer:
    peer: RemotePeer
    direction: str  # "send" or "receive"
    id: str
    name: str
    size: int
    mime: str
    bytes: int = 0
    state: str = "active"  # then "done", "cancelled" or "failed"
    reason: str = ""
    sha256: str = ""
    path: Path | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float = 0.0
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def speed(self) -> float:
        seconds = (self.ended or time.monotonic()) - self.started
        return self.bytes / seconds if seconds > 0 else 0.0

    def finish(self, state: str, reason: str = "") -> None:
        if self.finished.is_set():
            return
        self.state, self.reason, self.ended = state, reason, time.monotonic()
        self.finished.set()


def _control(data: str | bytes) -> dict[str, Any] | None:
    if not isinstance(data, str):
        return None
    with contextlib.suppress(ValueError):
        message = json.loads(data)
        if isinstance(message, dict) and isinstance(message.get("type"), str):
            return message
    return None


async def send_file(
    peer: RemotePeer, path: Path, *, on_progress: Callable[[Transfer], None] | None = None
) -> Transfer:
    """Send the file at `path` to `peer`; returns when it is delivered and verified.

    Raises TransferError if either side cancels or the checksums differ.
    """
    size = path.stat().st_size
    channel = peer.createDataChannel(LABEL, protocol=PROTOCOL)
    channel.bufferedAmountLowThreshold = LOW_WATER
    transfer = Transfer(
        peer=peer,
        direction="send",
        id=str(uuid.uuid4()),
        name=path.name,
        size=size,
        mime=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
        path=path,
    )
    opened = asyncio.Event()
    drained = asyncio.Event()
    channel.on("open", opened.set)
    channel.on("bufferedamountlow", drained.set)

    @channel.on("message")
    def on_message(data: str | bytes) -> None:
        message = _control(data)
        if message is None:
            return
        if message["type"] == "received":
            if message.get("sha256") == transfer.sha256:
                transfer.finish("done")
            else:
                transfer.finish("failed", "the receiver's checksum differs")
        elif message["type"] == "cancel":
            transfer.finish("cancelled", str(message.get("reason") or "cancelled by the receiver"))

    channel.on("close", lambda: transfer.finish("cancelled", "the connection closed"))
    await opened.wait()
    channel.send(
        json.dumps(
            {
                "type": "file",
                "id": transfer.id,
                "name": transfer.name,
                "size": size,
                "mime": transfer.mime,
            }
        )
    )
    digest = hashlib.sha256()
    sent = 0
    with path.open("rb") as source:
        while not transfer.finished.is_set():
            chunk = source.read(CHUNK_SIZE)
            if not chunk:
                break
            digest.update(chunk)
            while channel.bufferedAmount > HIGH_WATER and not transfer.finished.is_set():
                drained.clear()
                await drained.wait()
            if transfer.finished.is_set() or channel.readyState != "open":
                break
            channel.send(chunk)
            sent += len(chunk)
            transfer.bytes = max(0, sent - channel.bufferedAmount)
            if on_progress:
                on_progress(transfer)
            # Let the SCTP transport run between chunks.
            await asyncio.sleep(0)
    if not transfer.finished.is_set():
        transfer.sha256 = digest.hexdigest()
        channel.send(json.dumps({"type": "end", "sha256": transfer.sha256}))
        await transfer.finished.wait()
    transfer.bytes = sent if transfer.state == "done" else transfer.bytes
    if on_progress:
        on_progress(transfer)
    channel.close()
    if transfer.state != "done":
        raise TransferError(transfer.reason or transfer.state)
    return transfer


def receive_files(
    room: Room,
    folder: Path,
    *,
    on_transfer: Callable[[Transfer], None] | None = None,
    on_progress: Callable[[Transfer], None] | None = None,
) -> None:
    """Save every file a peer sends us into `folder` (verified, then renamed into place)."""
    folder.mkdir(parents=True, exist_ok=True)
    room.takes_files = True

    @room.on("datachannel")
    def on_datachannel(peer: RemotePeer, channel: RTCDataChannel) -> None:
        if channel.label == LABEL:
            _Receiver(peer, channel, folder, on_transfer, on_progress)


def _safe_name(name: str) -> str:
    cleaned = name.replace("/", "_").replace("\\", "_").strip(". ")[:255]
    return cleaned or "file"


class _Receiver:
    def __init__(
        self,
        peer: RemotePeer,
        channel: RTCDataChannel,
        folder: Path,
        on_transfer: Callable[[Transfer], None] | None,
        on_progress: Callable[[Transfer], None] | None,
    ) -> None:
        self.peer, self.channel, self.folder = peer, channel, folder
        self.on_transfer, self.on_progress = on_transfer, on_progress
        self.transfer: Transfer | None = None
        self.digest = hashlib.sha256()
        self.partial: Path | None = None
        self.out: Any = None
        channel.on("message", self.on_message)
        channel.on("close", self.on_close)

    def refuse(self, reason: str) -> None:
        if self.channel.readyState == "open":
            self.channel.send(json.dumps({"type": "cancel", "reason": reason}))
        self.end("cancelled", reason)
        self.channel.close()

    def end(self, state: str, reason: str = "") -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
        if state != "done" and self.partial is not None:
            self.partial.unlink(missing_ok=True)
        if self.transfer is not None:
            self.transfer.finish(state, reason)
            if self.on_progress:
                self.on_progress(self.transfer)

    def on_message(self, data: str | bytes) -> None:
        transfer = self.transfer
        if isinstance(data, bytes):
            if transfer is None or transfer.finished.is_set():
                return
            if transfer.bytes + len(data) > transfer.size:
                return self.refuse("more data than announced")
            self.out.write(data)
            self.digest.update(data)
            transfer.bytes += len(data)
            if self.on_progress:
                self.on_progress(transfer)
            return
        message = _control(data)
        if message is None:
            return
        if message["type"] == "file" and transfer is None:
            size = message.get("size")
            name = message.get("name")
            if not isinstance(size, int) or size < 0 or not isinstance(name, str):
                return self.refuse("bad file header")
            final = self._free_path(_safe_name(name))
            self.partial = final.with_name(final.name + ".part")
            self.out = self.partial.open("wb")
            self.transfer = Transfer(
                peer=self.peer,
                direction="receive",
                id=str(message.get("id")),
                name=final.name,
                size=size,
                mime=str(message.get("mime") or "application/octet-stream"),
                path=final,
            )
            if self.on_transfer:
                self.on_transfer(self.transfer)
        elif message["type"] == "end" and transfer is not None and not transfer.finished.is_set():
            digest = self.digest.hexdigest()
            if transfer.bytes != transfer.size:
                return self.refuse("file is incomplete")
            if digest != message.get("sha256"):
                return self.refuse("checksum mismatch")
            transfer.sha256 = digest
            self.out.close()
            self.out = None
            assert self.partial is not None and transfer.path is not None
            self.partial.rename(transfer.path)
            self.channel.send(json.dumps({"type": "received", "sha256": digest}))
            self.end("done")
        elif message["type"] == "cancel":
            self.end("cancelled", str(message.get("reason") or "cancelled by the sender"))
            self.channel.close()

    def on_close(self) -> None:
        if self.transfer is None or not self.transfer.finished.is_set():
            self.end("cancelled", "the connection closed")

    def _free_path(self, name: str) -> Path:
        path = self.folder / name
        stem, suffix, n = path.stem, path.suffix, 1
        while path.exists() or path.with_name(path.name + ".part").exists():
            path = self.folder / f"{stem} ({n}){suffix}"
            n += 1
        return path
