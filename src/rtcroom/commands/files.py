"""`rtcroom send` and `rtcroom receive`: files to and from the web app, peer to peer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)

from ..client import Room, RoomError, Transfer, TransferError, receive_files, send_file
from ..client.room import Token

console = Console(stderr=True, soft_wrap=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
    )


async def send(
    url: str, room: str, name: str, token: Token, path: Path, to: str | None, wait: float
) -> int:
    """Join, wait for the addressee (or anyone), send, leave. Exit status 0 when delivered."""
    if not path.is_file():
        console.print(f"[red]rtcroom send: {path} is not a file")
        return 2
    try:
        async with await Room.join(url, room, name, token=token) as session:
            who = f"[bold]{to}[/bold]" if to else "someone"
            console.print(f"In room [bold]{room}[/bold]; waiting for {who} to be there…")
            try:
                first = await session.wait_for_peer(to, timeout=wait)
            except TimeoutError:
                console.print(
                    f"[red]Nobody{' named ' + to if to else ''} joined within {wait:.0f} s"
                )
                return 1
            peers = [first] if to else list(session.peers.values())
            with _progress() as progress:
                tasks: dict[str, TaskID] = {
                    peer.id: progress.add_task(
                        f"{path.name} → {peer.name or peer.id}", total=path.stat().st_size
                    )
                    for peer in peers
                }

                def show(transfer: Transfer) -> None:
                    progress.update(tasks[transfer.peer.id], completed=transfer.bytes)

                results = await asyncio.gather(
                    *(send_file(peer, path, on_progress=show) for peer in peers),
                    return_exceptions=True,
                )
            failed = [r for r in results if isinstance(r, BaseException)]
            for result in results:
                if isinstance(result, Transfer):
                    console.print(
                        f"[green]Delivered[/green] {result.name} to {result.peer.name}, "
                        f"SHA-256 {result.sha256[:16]}… verified"
                    )
                elif isinstance(result, TransferError):
                    console.print(f"[red]Not delivered: {result}")
                else:
                    console.print(f"[red]Failed: {result!r}")
            return 1 if failed else 0
    except RoomError as exc:
        console.print(f"[red]rtcroom send: {exc.message}")
        return 1


async def receive(
    url: str, room: str, name: str, token: Token, folder: Path, count: int | None
) -> int:
    """Join and save every file sent to us into `folder`, until Ctrl-C (or `count` files)."""
    try:
        session = await Room.join(url, room, name, token=token)
    except RoomError as exc:
        console.print(f"[red]rtcroom receive: {exc.message}")
        return 1
    done = 0
    finished = asyncio.Event()
    with _progress() as progress:
        tasks: dict[int, TaskID] = {}

        def started(transfer: Transfer) -> None:
            tasks[id(transfer)] = progress.add_task(
                f"{transfer.name} ← {transfer.peer.name}", total=transfer.size
            )

        def show(transfer: Transfer) -> None:
            nonlocal done
            progress.update(tasks[id(transfer)], completed=transfer.bytes)
            if transfer.finished.is_set():
                if transfer.state == "done":
                    done += 1
                    progress.console.print(
                        f"[green]Saved[/green] {transfer.path} "
                        f"(SHA-256 {transfer.sha256[:16]}… verified)"
                    )
                else:
                    progress.console.print(f"[red]{transfer.name}: {transfer.reason}")
                if count is not None and done >= count:
                    finished.set()

        receive_files(session, folder, on_transfer=started, on_progress=show)
        console.print(
            f"In room [bold]{room}[/bold] as {name}; saving files to {folder} (Ctrl-C to stop)"
        )
        try:
            await asyncio.wait(
                [
                    asyncio.ensure_future(finished.wait()),
                    asyncio.ensure_future(session.wait_closed()),
                ],
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            await session.leave()
    return 0
