"""rtcroom in front of Janus: rooms placed on nodes, and one SfuPeer per peer in SFU mode.

Clients never see Janus (docs/sfu.md). For every peer of an SFU room this
process opens one Janus session on the room's node, with a participant
handle (joined as a publisher with the peer's id, so Janus's feed ids are
rtcroom's peer ids, and the peer hears who publishes) and, once it
subscribes, one subscriber handle that receives everyone. What Janus says
becomes rtcroom's protocol (`published`, `subscription`, `talking`, `mode`)
in the peer's mailbox; the peer's `publish`, `subscribe`, `answer`,
`trickle` and `layer` become Janus requests. Grants were checked by the
Session already; here they decide what is subscribed (audio and video
only: data goes peer to peer, or through the server's `broadcast`).

A node that fails (its WebSocket closes: Janus killed, or the link
dropped) takes its rooms with it: each is placed on a node that is up (the
same one once it is back), and every peer is told `mode` "sfu" again, so
that its client connects to the SFU anew.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from ..broker import Mailbox, Refused, Unavailable
from ..protocol import (
    Answer,
    ErrorCode,
    Layer,
    Mode,
    Published,
    PublishOffer,
    SfuMessage,
    Stream,
    Subscribe,
    Subscription,
    Talking,
    Trickle,
    encode,
    error,
)
from .janus import Event, Janus, JanusError, JanusHandle, JanusSession
from .placement import LocalPlacement, Placement

log = logging.getLogger("rtcroom.sfu")

VIDEOROOM = "janus.plugin.videoroom"
ROOM_EXISTS = 427  # JANUS_VIDEOROOM_ERROR_ROOM_EXISTS
NO_SUCH_ROOM = 426
ID_EXISTS = 436  # JANUS_VIDEOROOM_ERROR_ID_EXISTS
# Seconds between attempts to reach a node that is down.
RECONNECT_EVERY = 1.0
# Janus's error for a request without the right api_secret.
JANUS_UNAUTHORIZED = 403
# How long a room whose node failed waits for one to be up before its peers
# are told the SFU is unavailable.
REPLACE_WITHIN = 15.0


class SfuRefused(Refused):
    """The SFU could not do what the peer asked: an error for the client."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class SfuNode:
    """One Janus node: its WebSocket connection, kept up."""

    def __init__(self, url: str, secret: str) -> None:
        self.url = url
        self.secret = secret
        self.janus: Janus | None = None
        self.up = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None
        self.on_down: list[Any] = []
        # What in this node's configuration rtcroom cannot work with, and
        # which setting to change ("" when it is fine or not reached yet).
        self.misconfigured = ""

    async def connect(self) -> bool:
        try:
            janus = await Janus.connect(self.url, self.secret, timeout=5)
        except JanusError as exc:
            log.debug("Janus node %s: %s", self.url, exc)
            return False
        try:
            problem = await misconfiguration(janus)
        except JanusError as exc:
            log.debug("Janus node %s: %s", self.url, exc)
            await janus.close()
            return False
        if problem:
            if problem != self.misconfigured:
                log.error("the SFU (Janus) at %s cannot serve rtcroom: %s", self.url, problem)
            self.misconfigured = problem
            await janus.close()
            return False
        self.misconfigured = ""
        self.janus = janus
        self.up.set()
        return True

    def keep_up(self) -> None:
        """Watch the connection; reconnect (every RECONNECT_EVERY s) whenever it drops."""
        if self._keeper is None:
            self._keeper = asyncio.get_running_loop().create_task(self._keep())

    async def _keep(self) -> None:
        warned = False
        while True:
            if self.janus is None:
                if not await self.connect():
                    if not warned and not self.misconfigured:  # (connect said that)
                        log.warning("Janus node %s is unreachable: retrying", self.url)
                    warned = True
                    await asyncio.sleep(RECONNECT_EVERY)
                    continue
                if warned:
                    log.info("Janus node %s is reachable again", self.url)
                warned = False
            assert self.janus is not None
            await self.janus.closed.wait()
            log.warning("lost the connection to Janus node %s", self.url)
            self.janus = None
            self.up.clear()
            for callback in list(self.on_down):
                callback(self)

    async def close(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        if self.janus is not None:
            await self.janus.close()
            self.janus = None
        self.up.clear()


async def misconfiguration(janus: Janus) -> str:
    """What in a Janus's settings rtcroom cannot work with, and what to change ("": none).

    rtcroom may meet a Janus it did not configure (`rtcroom sfu-config`
    writes all of this): it checks the API secret, the VideoRoom plugin and
    its string room ids, without which every SFU join would fail later.
    """
    info = await janus.info()
    if VIDEOROOM not in info.get("plugins", {}):
        return (
            f"its VideoRoom plugin ({VIDEOROOM}) is not loaded: take it out of "
            "janus.jcfg's plugins: disable list"
        )
    try:
        session = await janus.create_session()
    except JanusError as exc:
        if exc.code == JANUS_UNAUTHORIZED:
            return (
                f"it refuses rtcroom's API secret ({exc.reason}): --sfu-secret "
                "(RTCROOM_SFU_SECRET) must be the api_secret of its janus.jcfg"
            )
        raise
    try:
        handle = await session.attach(VIDEOROOM)
        try:
            await handle.request({"request": "exists", "room": "rtcroom-settings-check"})
        except JanusError as exc:
            return (
                f"its VideoRoom takes numbers as room ids ({exc.reason}): set string_ids = true "
                "in janus.plugin.videoroom.jcfg (general), as `rtcroom sfu-config` writes it"
            )
    finally:
        await session.destroy()
    return ""


def _media_streams(publisher: dict[str, Any]) -> list[tuple[str, str]]:
    """(feed, mid) of a Janus publisher's audio and video streams that are on."""
    feed = str(publisher.get("id", ""))
    return [
        (feed, str(stream["mid"]))
        for stream in publisher.get("streams", [])
        if stream.get("type") in ("audio", "video") and not stream.get("disabled")
    ]


def subscription_streams(streams: Iterable[dict[str, Any]]) -> list[Stream]:
    """The `streams` of a Janus `attached`/`updated` event, as rtcroom's protocol says them."""
    found = []
    for stream in streams:
        feed = stream.get("feed_id")
        if feed is None or stream.get("active") is False or stream.get("type") == "data":
            continue
        found.append(
            Stream(
                mid=str(stream["mid"]),
                kind=str(stream.get("type", "")),
                peer=str(feed),
                source=str(stream["feed_mid"]) if "feed_mid" in stream else None,
                label=str(stream["feed_description"]) if stream.get("feed_description") else None,
                simulcast=bool(stream.get("simulcast")),
            )
        )
    return found


class SfuPeer:
    """One rtcroom peer's presence on Janus: a session, a participant handle, a subscriber."""

    def __init__(
        self,
        sfu: Sfu,
        room: str,
        peer_id: str,
        name: str,
        grants: frozenset[str],
        mailbox: Mailbox | None,
    ) -> None:
        self.sfu = sfu
        self.room = room
        self.id = peer_id
        self.name = name
        self.grants = grants
        self.mailbox = mailbox
        self.node: SfuNode | None = None
        self.session: JanusSession | None = None
        self.participant: JanusHandle | None = None
        self.subscriber: JanusHandle | None = None
        # Feed (peer id) -> its audio and video (feed, mid) pairs, as Janus announced them.
        self.publishers: dict[str, list[tuple[str, str]]] = {}
        self.subscribed: set[tuple[str, str]] = set()
        self.subscribing = False
        self.publishing = False
        # The latest subscription offer: delivered again on resume.
        self.offer: str | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._grace: asyncio.TimerHandle | None = None
        self.closed = False

    def deliver(self, frame: str) -> None:
        if self.mailbox is not None:
            self.mailbox.deliver(frame)

    async def start(self, node: SfuNode) -> None:
        """Join the room on `node` as a participant (publishing nothing yet)."""
        janus = node.janus
        if janus is None:
            raise Unavailable("the SFU is unavailable: try again shortly")
        self.node = node
        join = {
            "request": "join",
            "ptype": "publisher",
            "room": self.room,
            "id": self.id,
            "display": self.name,
        }
        try:
            self.session = await janus.create_session()
            self.participant = await self.session.attach(VIDEOROOM)
            try:
                joined = await self.participant.message(join)
            except JanusError as exc:
                if exc.code != ID_EXISTS:
                    raise
                # The peer resumed here from another process, whose handles
                # are still in the room: they make way.
                await self.participant.request(
                    {"request": "kick", "room": self.room, "id": self.id}
                )
                joined = await self.participant.message(join)
        except JanusError as exc:
            await self.stop()
            raise Unavailable(f"the SFU refused the room ({exc.reason}): try again") from exc
        for publisher in joined.data.get("publishers", []):
            self.publishers[str(publisher["id"])] = _media_streams(publisher)
        self._spawn(self._read_participant(self.participant))

    async def stop(self) -> None:
        """Leave Janus: the session ends, and its handles with it. Idempotent."""
        for task in list(self._tasks):
            task.cancel()
        session, self.session = self.session, None
        self.participant = self.subscriber = None
        self.subscribed.clear()
        self.publishers.clear()
        self.offer = None
        if session is not None:
            with contextlib.suppress(JanusError):
                await session.destroy()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # What the peer asks

    async def publish(self, sdp: str, labels: dict[str, str]) -> None:
        assert self.participant is not None
        body: dict[str, Any] = {"request": "configure"}
        if labels:
            body["descriptions"] = [
                {"mid": mid, "description": label} for mid, label in labels.items()
            ]
        answer = await self._request(self.participant, body, {"type": "offer", "sdp": sdp})
        if answer.jsep is None:
            raise SfuRefused(ErrorCode.BAD_MESSAGE, "the SFU gave no answer to that offer")
        self.publishing = True
        self.deliver(encode(Published(sdp=str(answer.jsep["sdp"]))))

    async def subscribe(self) -> None:
        self.subscribing = True
        if self.offer is not None:
            self.deliver(self.offer)
        await self._update()

    async def answer(self, sdp: str) -> None:
        if self.subscriber is None or self.offer is None:
            raise SfuRefused(ErrorCode.BAD_MESSAGE, "no subscription offer to answer")
        self.offer = None
        answer = await self._request(
            self.subscriber, {"request": "start"}, {"type": "answer", "sdp": sdp}
        )
        log.debug("answer of %s: %s", self.id, answer.data)
        # An update Janus postponed until this answer comes back with it.
        self._maybe_offered(answer)

    async def trickle(self, pc: str, candidate: dict[str, Any] | None) -> None:
        handle = self.participant if pc == "publish" else self.subscriber
        if handle is not None:
            with contextlib.suppress(JanusError):
                await handle.trickle(candidate)

    async def layer(self, mid: str, substream: int) -> None:
        if self.subscriber is None:
            raise SfuRefused(ErrorCode.BAD_MESSAGE, "nothing subscribed yet")
        body = {"request": "configure", "streams": [{"mid": mid, "substream": substream}]}
        self._maybe_offered(await self._request(self.subscriber, body))

    async def _request(
        self, handle: JanusHandle, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> Event:
        try:
            return await handle.message(body, jsep)
        except JanusError as exc:
            if exc.code == 0:
                raise Unavailable("the SFU is unavailable: try again shortly") from exc
            raise SfuRefused(ErrorCode.BAD_MESSAGE, f"the SFU refused: {exc.reason}") from exc

    # What Janus says

    async def _read_participant(self, handle: JanusHandle) -> None:
        while True:
            event = await handle.events.get()
            if event.kind == "closed":
                return
            data = event.data
            kind = data.get("videoroom")
            log.debug("participant %s: %s %s", self.id, event.kind, data)
            if kind in ("talking", "stopped-talking"):
                self.deliver(encode(Talking(peer=str(data.get("id")), talking=kind == "talking")))
                continue
            changed = False
            for publisher in data.get("publishers", []):
                self.publishers[str(publisher["id"])] = _media_streams(publisher)
                changed = True
            for key in ("unpublished", "leaving", "kicked"):
                gone = data.get(key)
                if gone is not None and gone != "ok":
                    # Janus updates the subscription itself (autoupdate); it may
                    # say so twice.
                    feed = str(gone)
                    self.publishers.pop(feed, None)
                    self.subscribed = {pair for pair in self.subscribed if pair[0] != feed}
            if changed and self.subscribing:
                try:
                    await self._update()
                except Refused as exc:
                    log.info("could not update %s's subscription: %s", self.id, exc)

    async def _read_subscriber(self, handle: JanusHandle) -> None:
        while True:
            event = await handle.events.get()
            if event.kind == "closed":
                return
            log.debug(
                "subscriber %s: %s %s %s", self.id, event.kind, event.data, event.jsep is not None
            )
            self._maybe_offered(event)

    def _maybe_offered(self, event: Event) -> None:
        if event.jsep is not None and event.jsep.get("type") == "offer":
            self._offered(event)

    def _offered(self, event: Event) -> None:
        assert event.jsep is not None
        listed = event.data.get("streams", [])
        streams = subscription_streams(listed)
        # What Janus forwards to us now, as it says (a feed that left and came
        # back is subscribed to anew).
        self.subscribed = {(s.peer, s.source) for s in streams if s.source is not None}
        self.offer = encode(Subscription(sdp=str(event.jsep["sdp"]), streams=streams))
        self.deliver(self.offer)

    async def _update(self) -> None:
        """Subscribe to every stream announced and not yet subscribed (one request)."""
        async with self._lock:
            if self.session is None:
                return
            wanted = [
                pair
                for feed, pairs in self.publishers.items()
                if feed != self.id
                for pair in pairs
                if pair not in self.subscribed
            ]
            if not wanted:
                log.debug(
                    "update of %s: nothing new (%s, %s)", self.id, self.publishers, self.subscribed
                )
                return
            streams = [{"feed": feed, "mid": mid} for feed, mid in wanted]
            if self.subscriber is None:
                handle = await self.session.attach(VIDEOROOM)
                self.subscriber = handle
                self._spawn(self._read_subscriber(handle))
                body = {"request": "join", "ptype": "subscriber", "room": self.room}
                answer = await self._request(handle, {**body, "streams": streams})
            else:
                answer = await self._request(
                    self.subscriber, {"request": "subscribe", "streams": streams}
                )
            log.debug("subscribe %s to %s: %s", self.id, wanted, answer.data)
            self.subscribed.update(wanted)
            self._maybe_offered(answer)


class Sfu:
    """The SFU of one rtcroom process: its Janus nodes, room placement and SfuPeers."""

    def __init__(
        self,
        urls: Iterable[str],
        secret: str,
        *,
        max_peers: int = 50,
        resume_grace: float = 20.0,
        placement: Placement | None = None,
    ) -> None:
        self.nodes = {url: SfuNode(url, secret) for url in urls}
        self.max_peers = max_peers
        self.resume_grace = resume_grace
        self.placement = placement or LocalPlacement()
        self.peers: dict[str, SfuPeer] = {}
        # (node URL, room) that this process created (or found) on Janus.
        self._opened: set[tuple[str, str]] = set()
        for node in self.nodes.values():
            node.on_down.append(self._node_down)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Connect to every node; say which cannot be reached (they are retried)."""
        results = await asyncio.gather(*(node.connect() for node in self.nodes.values()))
        for node, up in zip(self.nodes.values(), results, strict=True):
            if not up and not node.misconfigured:  # (that was said by connect)
                log.error(
                    "cannot reach the SFU (Janus) at %s: rooms it would serve answer joins "
                    "with 'unavailable' until it is up; mesh rooms are served as usual",
                    node.url,
                )
            node.keep_up()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(
            *(peer.stop() for peer in list(self.peers.values())), return_exceptions=True
        )
        self.peers.clear()
        for node in self.nodes.values():
            await node.close()

    # Rooms

    async def running(self, room: str) -> bool:
        """Whether `room` is served by the SFU now."""
        return await self.placement.node_of(room) is not None

    def _up(self) -> list[str]:
        return [url for url, node in self.nodes.items() if node.up.is_set()]

    async def open(self, room: str) -> SfuNode:
        """Serve `room` through the SFU: its node, with the room created there."""
        up = self._up()
        if not up:
            raise Unavailable("the SFU is unavailable: try again shortly")
        url = await self.placement.place(room, up)
        node = self.nodes[url]
        janus = node.janus
        if janus is None:
            raise Unavailable("the SFU is unavailable: try again shortly")
        if (url, room) in self._opened:
            return node
        try:
            session = await janus.create_session()
            try:
                handle = await session.attach(VIDEOROOM)
                await handle.request(
                    {
                        "request": "create",
                        "room": room,
                        "permanent": False,
                        "publishers": self.max_peers,
                        "audiolevel_ext": True,
                        "audiolevel_event": True,
                        "audio_active_packets": 50,
                        "audio_level_average": 40,
                        "videocodec": "vp8",
                        "audiocodec": "opus",
                        "notify_joining": False,
                    }
                )
            finally:
                await session.destroy()
        except JanusError as exc:
            if exc.code != ROOM_EXISTS:
                await self.placement.forget(room, url)
                raise Unavailable(f"the SFU cannot serve the room ({exc.reason})") from exc
        self._opened.add((url, room))
        return node

    async def _close_room(self, room: str, node: SfuNode, gone: str = "") -> None:
        """Destroy `room` on `node` if nobody is in it any more (on any process).

        `gone` just left: Janus may list it a moment longer.
        """
        janus = node.janus
        if janus is None:
            return
        try:
            session = await janus.create_session()
            try:
                handle = await session.attach(VIDEOROOM)
                listed = await handle.request({"request": "listparticipants", "room": room})
                if all(p.get("id") == gone for p in listed.get("participants", [])):
                    self._opened.discard((node.url, room))
                    await self.placement.forget(room, node.url)
                    await handle.request({"request": "destroy", "room": room})
            finally:
                await session.destroy()
        except JanusError as exc:
            if exc.code == NO_SUCH_ROOM:
                self._opened.discard((node.url, room))
                await self.placement.forget(room, node.url)
            else:
                log.info("could not close SFU room %s: %s", room, exc)

    # Peers

    async def handle(
        self,
        room: str,
        peer_id: str,
        name: str,
        grants: frozenset[str],
        message: SfuMessage,
        mailbox: Mailbox,
    ) -> None:
        """Carry out a peer's SFU message; Refused with the error for the client."""
        peer = self.peers.get(peer_id)
        if peer is None:
            if not await self.running(room):
                raise SfuRefused(
                    ErrorCode.UNSUPPORTED, "this room is not served by the SFU: call the others"
                )
            peer = SfuPeer(self, room, peer_id, name, grants, mailbox)
            self.peers[peer_id] = peer
            try:
                await peer.start(await self.open(room))
            except BaseException:
                self.peers.pop(peer_id, None)
                raise
        match message:
            case PublishOffer(sdp=sdp, labels=labels):
                await peer.publish(sdp, labels)
            case Subscribe():
                await peer.subscribe()
            case Answer(sdp=sdp):
                await peer.answer(sdp)
            case Trickle(pc=pc, candidate=candidate):
                init = (
                    None
                    if candidate is None
                    else {
                        "candidate": candidate.candidate,
                        "sdpMid": candidate.sdp_mid,
                        "sdpMLineIndex": candidate.sdp_m_line_index,
                    }
                )
                await peer.trickle(pc, init)
            case Layer(mid=mid, substream=substream):
                await peer.layer(mid, substream)

    def suspend(self, peer_id: str) -> None:
        """The peer's connection dropped: its media goes on for the grace period."""
        peer = self.peers.get(peer_id)
        if peer is not None:
            peer.mailbox = None
            loop = asyncio.get_running_loop()
            peer._grace = loop.call_later(
                self.resume_grace + 1.0, lambda: self._spawn(self.leave(peer.room, peer_id))
            )

    def resume(self, peer_id: str, mailbox: Mailbox) -> bool:
        """A connection took the peer back: whether it is in an SFU room here."""
        peer = self.peers.get(peer_id)
        if peer is None:
            return False
        if peer._grace is not None:
            peer._grace.cancel()
            peer._grace = None
        peer.mailbox = mailbox
        if peer.offer is not None:
            mailbox.deliver(peer.offer)
        return True

    async def leave(self, room: str, peer_id: str) -> None:
        """The peer left `room`: close everything it had on Janus. Idempotent.

        The last of this process's peers in the room closes the room on
        Janus too, if nobody (of any process) is in it there.
        """
        peer = self.peers.pop(peer_id, None)
        if peer is not None:
            if peer._grace is not None:
                peer._grace.cancel()
            await peer.stop()
        if any(p.room == room for p in self.peers.values()):
            return
        url = await self.placement.node_of(room)
        node = self.nodes.get(url) if url is not None else None
        if node is not None:
            await self._close_room(room, node, peer_id)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # Failures

    def _node_down(self, node: SfuNode) -> None:
        self._opened = {(url, room) for url, room in self._opened if url != node.url}
        rooms = {peer.room for peer in self.peers.values() if peer.node is node}
        for room in rooms:
            self._spawn(self._replace(room, node))

    async def _replace(self, room: str, lost: SfuNode) -> None:
        """Serve `room` from a node that is up, and have its peers connect to it anew."""
        await self.placement.forget(room, lost.url)
        peers = [peer for peer in self.peers.values() if peer.room == room]
        for peer in peers:
            await peer.stop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REPLACE_WITHIN
        while True:
            try:
                node = await self.open(room)
                break
            except Unavailable:
                if loop.time() > deadline:
                    log.error("no SFU node can take room %s", room)
                    for peer in peers:
                        self.peers.pop(peer.id, None)
                        peer.deliver(error(ErrorCode.UNAVAILABLE, "the SFU is unavailable"))
                    return
                await asyncio.sleep(RECONNECT_EVERY / 2)
        for peer in peers:
            if self.peers.get(peer.id) is not peer:
                continue  # it left meanwhile
            try:
                await peer.start(node)
            except Refused as exc:
                log.warning("could not move %s to %s: %s", peer.id, node.url, exc)
                continue
            peer.subscribing = peer.publishing = False
            peer.deliver(encode(Mode(mode="sfu")))
        log.info("room %s moved to SFU node %s", room, node.url)
