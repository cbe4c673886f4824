"""A Python peer's two connections with the SFU, in a room served by it.

In SFU mode (docs/protocol.md, "SFU rooms") a Room publishes its tracks
once, on a sendonly connection with the SFU (our offer, its answer), and
receives everyone on one other connection (the SFU's offers, our answers).
The tracks that arrive are the Room's "track" events, with the RemotePeer
whose they are, as in a mesh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from ..auth import PUBLISH, SUBSCRIBE
from ..protocol import Answer, PublishOffer, Stream, Subscribe, Subscription

if TYPE_CHECKING:
    from .room import Room

log = logging.getLogger("rtcroom.client")


class SfuConnection:
    """The publishing and the subscribing connection of one Room with the SFU."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self.publisher: RTCPeerConnection | None = None
        self.subscriber: RTCPeerConnection | None = None
        # The subscription's media sections: mid -> whose stream it is.
        self.streams: dict[str, Stream] = {}
        # Closing a connection ends the tracks it sent (aiortc): it sends
        # relayed copies, so that our tracks outlive it (an SFU node that
        # fails is replaced by a new connection).
        self._relay = MediaRelay()
        self._lock = asyncio.Lock()
        # Tracks were added while an offer was out.
        self._more = False

    def _configuration(self) -> RTCConfiguration:
        return RTCConfiguration(iceServers=self.room.ice_servers)

    async def start(self) -> None:
        """Publish our tracks and ask for everyone's (again, after a `mode`)."""
        async with self._lock:
            await self._close()
            room = self.room
            if room.tracks and PUBLISH in room.grants:
                pc = RTCPeerConnection(self._configuration())
                self.publisher = pc
                for track in room.tracks:
                    pc.addTransceiver(
                        self._relay.subscribe(track, buffered=False), direction="sendonly"
                    )
                await self._offer(pc)
            if SUBSCRIBE in room.grants:
                await room.send(Subscribe())

    async def published(self, sdp: str) -> None:
        """The SFU's answer to our publish offer."""
        async with self._lock:
            pc = self.publisher
            if pc is not None and pc.signalingState == "have-local-offer":
                await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
                if self._more:
                    # Tracks added while the offer was out: offer again.
                    await self._offer(pc)

    async def publish(self, track: MediaStreamTrack) -> None:
        """Publish one more track (a bot's, say), renegotiating with the SFU."""
        async with self._lock:
            pc = self.publisher
            if pc is None:
                pc = self.publisher = RTCPeerConnection(self._configuration())
            pc.addTransceiver(self._relay.subscribe(track, buffered=False), direction="sendonly")
            if pc.signalingState == "stable":
                await self._offer(pc)
            else:
                self._more = True

    async def _offer(self, pc: RTCPeerConnection) -> None:
        self._more = False
        # aiortc gathers every candidate before the offer is set: no trickling.
        await pc.setLocalDescription(await pc.createOffer())
        await self.room.send(PublishOffer(sdp=pc.localDescription.sdp))

    async def subscription(self, offer: Subscription) -> None:
        """The SFU's offer for the subscribing connection: answer it."""
        async with self._lock:
            pc = self.subscriber
            if pc is None:
                pc = self.subscriber = RTCPeerConnection(self._configuration())
                pc.on("track", lambda track, pc=pc: self._track(pc, track))
            self.streams = {stream.mid: stream for stream in offer.streams}
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await self.room.send(Answer(sdp=pc.localDescription.sdp))

    def _track(self, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        mid = next(
            (t.mid for t in pc.getTransceivers() if t.receiver.track is track and t.mid), None
        )
        stream = self.streams.get(mid) if mid is not None else None
        if stream is None:
            log.debug("rtcroom client: a track of the SFU for no known stream (mid %s)", mid)
            return
        self.room._sfu_track(stream, track)

    async def _close(self) -> None:
        for pc in (self.publisher, self.subscriber):
            if pc is not None:
                with contextlib.suppress(Exception):
                    await pc.close()
        self.publisher = self.subscriber = None
        self.streams = {}

    async def close(self) -> None:
        async with self._lock:
            await self._close()
