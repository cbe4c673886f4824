"""Against a real coturn configured by `rtcroom turn-config`: what it accepts and refuses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aioice import stun, turn
from conftest import RunningTurn

from rtcroom.turn import mint


async def allocate(server: RunningTurn, username: str, password: str) -> turn.TurnTransport:
    transport, _ = await turn.create_turn_endpoint(
        asyncio.DatagramProtocol,
        server_addr=("127.0.0.1", server.port),
        username=username,
        password=password,
        lifetime=60,
    )
    return transport


def error_code(exc: stun.TransactionFailed) -> int:
    code: int = exc.response.attributes["ERROR-CODE"][0]
    return code


async def test_coturn_checks_rtcroom_credentials(start_turn: Callable[..., RunningTurn]) -> None:
    server = start_turn()
    fresh = mint(server.secret, "peer1", ttl=600)
    transport = await allocate(server, *fresh)
    relayed = transport.get_extra_info("sockname")
    assert relayed[0] == "127.0.0.1"
    transport.close()

    expired = mint(server.secret, "peer1", ttl=-60)
    wrong_secret = mint("another-secret-0123456789", "peer1", ttl=600)
    username, credential = mint(server.secret, "peer1", ttl=600)
    altered = (username.replace(":peer1", ":peer2"), credential)
    for name, (user, password) in {
        "expired": expired,
        "wrong secret": wrong_secret,
        "altered peer id": altered,
    }.items():
        with pytest.raises(stun.TransactionFailed) as info:
            await allocate(server, user, password)
        assert error_code(info.value) == 401, name


@pytest.mark.parametrize("target", ["127.0.0.1", "10.0.0.1", "169.254.169.254"])
async def test_turn_config_refuses_relaying_to_private_addresses(
    start_turn: Callable[..., RunningTurn], target: str
) -> None:
    server = start_turn()
    transport = await allocate(server, *mint(server.secret, "peer1", ttl=600))
    with pytest.raises(stun.TransactionFailed) as info:
        # aioice keeps its TURN client protocol private; ChannelBind asks coturn
        # for a permission to `target`, which the configuration must refuse.
        await transport._TurnTransport__inner_protocol.channel_bind(0x4000, (target, 9))  # type: ignore[attr-defined]
    assert error_code(info.value) == 403
    assert "Forbidden" in info.value.response.attributes["ERROR-CODE"][1]
    transport.close()


async def test_the_testing_allowance_only_opens_loopback(
    start_turn: Callable[..., RunningTurn],
) -> None:
    """Control for the test above: the same bind succeeds where it is allowed."""
    server = start_turn(allow_loopback_relay=True)
    transport = await allocate(server, *mint(server.secret, "peer1", ttl=600))
    client = transport._TurnTransport__inner_protocol  # type: ignore[attr-defined]
    await client.channel_bind(0x4000, ("127.0.0.1", 9))
    with pytest.raises(stun.TransactionFailed) as info:
        await client.channel_bind(0x4001, ("10.0.0.1", 9))
    assert error_code(info.value) == 403
    transport.close()
