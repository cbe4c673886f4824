"""Signed webhooks (--webhook) from real `rtcroom serve` processes to a receiver
in the test that verifies every signature with the `standardwebhooks` package,
as an operator's endpoint would."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import RunningRedis, RunningServer, free_port
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from test_metrics import until
from test_serve import Peer, connect

from rtcroom.tally import TALLY
from rtcroom.webhooks.queue import MemoryQueue
from rtcroom.webhooks.signing import SecretError, parse_secret, sign

SECRET = "whsec_" + base64.b64encode(b"webhook-test-key-0123456789abcdef").decode()
# Time for every event to arrive: retries and a killed process's lease included.
SETTLE = 40.0


class Receiver:
    """An endpoint: verifies, then accepts (204) or fails (500) the first `fail` attempts."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.accepted: list[dict[str, Any]] = []
        self.attempts: Counter[str] = Counter()
        self.forged = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    payload = Webhook(SECRET).verify(body, dict(self.headers.items()))
                except WebhookVerificationError:
                    with receiver.lock:
                        receiver.forged += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.attempts[self.headers["webhook-id"]] += 1
                    failing = sum(receiver.attempts.values()) <= receiver.fail
                    if not failing:
                        receiver.accepted.append(payload)
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/rtcroom"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[tuple[str, ...]]:
        """What was accepted, in order: (type, room[, peer name[, reason]])."""
        with self.lock:
            accepted = list(self.accepted)
        return [_short(payload) for payload in accepted]

    async def wait_for(self, count: int) -> list[tuple[str, ...]]:
        deadline = time.monotonic() + SETTLE
        while len(self.events()) < count:
            assert time.monotonic() < deadline, f"only {self.events()} after {SETTLE}s"
            await asyncio.sleep(0.1)
        # Nothing more comes (no duplicate, no late retry).
        await asyncio.sleep(1.5)
        return self.events()


def _short(payload: dict[str, Any]) -> tuple[str, ...]:
    data = payload["data"]
    short = (payload["type"], data["room"])
    if "peer" in data:
        short += (data["peer"]["name"],)
    if "reason" in data:
        short += (data["reason"],)
    return short


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(fail: int = 0) -> Receiver:
        made.append(Receiver(fail))
        return made[-1]

    yield make
    for r in made:
        r.server.shutdown()
        r.server.server_close()


def webhook_flags(receiver: Receiver, *extra: str) -> tuple[str, ...]:
    return ("--webhook", receiver.url, "--webhook-secret", SECRET, *extra)


def test_signature_matches_the_specifications_example() -> None:
    # The example of the Standard Webhooks reference libraries.
    key = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signature = sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    for bad, why in (
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "starts with whsec_"),
        ("whsec_not base64!", "not base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "holds 5 bytes"),
    ):
        with pytest.raises(SecretError, match=why):
            parse_secret(bad)


async def test_memory_queue_keeps_order_per_endpoint_and_its_bound() -> None:
    queue = MemoryQueue(["a", "b"], limit=3)
    overflow = TALLY.webhooks["overflow"]
    for n in range(5):
        queue.add(b"%d" % n)
    assert TALLY.webhooks["overflow"] - overflow == 2
    assert [body for _, body in await queue.next("a", 10)] == [b"0", b"1", b"2"]
    # a has had two, b none: nothing is dropped until both had it.
    await queue.commit("a", "2")
    assert [body for _, body in await queue.next("a", 10)] == [b"2"]
    assert queue.pending() == 3
    await queue.commit("b", "1")
    assert queue.pending() == 2
    queue.add(b"5")
    assert [body for _, body in await queue.next("b", 10)] == [b"1", b"2", b"5"]


async def test_events_in_order_signed_and_retried(
    start_server: Callable[..., RunningServer], receiver: Callable[..., Receiver]
) -> None:
    # The endpoint fails its first two attempts: the first event is retried.
    endpoint = receiver(fail=2)
    server = start_server(*webhook_flags(endpoint))
    ann, bob = await connect(server), await connect(server)
    await ann.join("team", "Ann")
    await bob.join("team", "Bob")
    await bob.send({"type": "leave"})
    await ann.ws.close()
    events = await endpoint.wait_for(6)
    assert events == [
        ("room.started", "team"),
        ("participant.joined", "team", "Ann"),
        ("participant.joined", "team", "Bob"),
        ("participant.left", "team", "Bob", "left"),
        ("participant.left", "team", "Ann", "closed"),
        ("room.finished", "team"),
    ]
    assert endpoint.forged == 0
    ids = [payload["id"] for payload in endpoint.accepted]
    assert len(set(ids)) == 6
    # Every event once, the first after its two failed attempts, with the same id.
    assert endpoint.attempts[ids[0]] == 3
    assert all(endpoint.attempts[i] == 1 for i in ids[1:])
    first = endpoint.accepted[0]
    assert first["timestamp"].endswith("Z") and first["id"].startswith("evt_")
    await bob.ws.close()


async def test_exactly_once_across_two_processes_and_a_kill(
    start_server: Callable[..., RunningServer],
    redis_server: RunningRedis,
    receiver: Callable[..., Receiver],
) -> None:
    endpoint = receiver(fail=2)
    flags = webhook_flags(
        endpoint, "--broker", redis_server.url, "--node-ttl", "1", "--webhook-timeout", "1"
    )
    one, two = start_server(*flags), start_server(*flags)
    ann = await connect(one)
    await ann.join("team", "Ann")
    bob = await connect(two)
    await bob.join("team", "Bob")
    assert (await ann.recv())["type"] == "peer-joined"
    assert await endpoint.wait_for(3) == [
        ("room.started", "team"),
        ("participant.joined", "team", "Ann"),
        ("participant.joined", "team", "Bob"),
    ]
    # Bob's process dies (it may be the one delivering): the other reaps Bob
    # and takes over the deliveries where they stopped.
    two.process.send_signal(signal.SIGKILL)
    two.process.wait()
    assert (await ann.recv(timeout=15))["type"] == "peer-left"
    await ann.send({"type": "leave"})
    events = await endpoint.wait_for(6)
    assert events[3:] == [
        ("participant.left", "team", "Bob", "node-lost"),
        ("participant.left", "team", "Ann", "left"),
        ("room.finished", "team"),
    ]
    assert endpoint.forged == 0
    assert len({payload["id"] for payload in endpoint.accepted}) == 6
    await ann.ws.close()


async def test_a_dead_endpoint_never_holds_up_signaling(
    start_server: Callable[..., RunningServer],
) -> None:
    # An endpoint that takes connections and never answers.
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead.listen(512)
    url = f"http://127.0.0.1:{dead.getsockname()[1]}/"
    metrics = free_port()
    server = start_server(
        *("--webhook", url, "--webhook-secret", SECRET, "--webhook-timeout", "30"),
        *("--webhook-queue", "5", "--metrics-port", str(metrics), "--log-format", "json"),
    )
    peers: list[Peer] = []
    ids: list[str] = []
    started = time.monotonic()
    for i in range(8):
        peer = await connect(server)
        ids.append((await peer.join("busy", f"p{i}"))["id"])
        peers.append(peer)
    joined = time.monotonic() - started
    # Relayed at once, whatever the endpoint does.
    signal_sent = time.monotonic()
    await peers[1].send({"type": "signal", "to": ids[0], "data": "hi"})
    while (message := await peers[0].recv())["type"] != "signal":
        pass
    assert time.monotonic() - signal_sent < 2.0
    assert message["data"] == "hi"
    assert joined < 8.0, f"8 joins took {joined:.1f}s"
    # 9 events (started, 8 joins) into a queue of 5: the rest counted as dropped, and logged.
    samples = await until(metrics, rtcroom_webhooks_total__outcome_eq_overflow=4)
    assert 'rtcroom_webhooks_total{outcome="delivered"}' not in samples
    lines = [
        json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")
    ]
    assert [line["event"] for line in lines].count("webhook-overflow") == 1
    for peer in peers:
        await peer.ws.close()
    dead.close()


def test_webhooks_need_a_good_secret() -> None:
    import subprocess
    import sys

    def serve(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "rtcroom", "serve", "--port", "0", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2
        return result.stderr

    assert "--webhook needs --webhook-secret" in serve("--webhook", "http://127.0.0.1:9/")
    assert "starts with whsec_" in serve(
        "--webhook", "http://127.0.0.1:9/", "--webhook-secret", "hunter2"
    )
    assert "is not an http:// or https:// URL" in serve(
        "--webhook", "ftp://example/", "--webhook-secret", SECRET
    )
