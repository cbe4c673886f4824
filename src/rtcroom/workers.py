"""`rtcroom serve --workers N`: N processes on one port, rooms shared through Redis.

Each worker listens on the port with SO_REUSEPORT, so the kernel spreads
new connections evenly over them (a shared accept queue would not: the
busiest process tends to win); the parent binds the port first, without
listening, to report a port in use once and keep it reserved. Each worker is
an ordinary rtcroom server with its own node in the Redis broker, which is
why peers on different workers meet as if on one process. The parent only
supervises: it passes SIGTERM and SIGINT on (each worker drains its
clients as a single process would; a second signal ends them at once) and
starts a new worker when one dies.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from types import FrameType

from .config import Config

log = logging.getLogger("rtcroom")


def _worker(config: Config) -> None:
    # Its own process group: a Ctrl-C in the terminal reaches the parent
    # only, which passes it on once.
    os.setpgrp()
    from .app import RoomServer
    from .serve import listen, run

    sock = listen(config.host, config.port, shared=True)
    sock.listen(2048)
    # The parent serves the workers' metrics, summed (metrics.py).
    if not run(RoomServer(config, serve_metrics=False), config, sock=sock):
        raise SystemExit(1)


def serve_workers(config: Config) -> int:
    """Run `config.workers` servers on one port until signalled; return the exit status."""
    from .serve import listen

    # The caller's BindError says why the port cannot be had.
    reserved = listen(config.host, config.port, shared=True)
    metrics_folder = None
    if config.metrics_port is not None:
        # Named before prometheus_client is imported, which reads it then.
        metrics_folder = tempfile.mkdtemp(prefix="rtcroom-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_folder
        from .metrics import serve, worker_gone

        try:
            listener = serve(config.metrics_host, config.metrics_port, None)
        except OSError as exc:
            log.error(
                "cannot serve metrics on %s:%d: %s",
                config.metrics_host,
                config.metrics_port,
                exc.strerror,
            )
            return 1
        log.info("metrics on http://%s:%d/metrics", config.metrics_host, config.metrics_port)
    context = multiprocessing.get_context("fork")
    workers: list[multiprocessing.process.BaseProcess] = []
    stopping = False

    def start() -> multiprocessing.process.BaseProcess:
        process = context.Process(target=_worker, args=(config,), daemon=False)
        process.start()
        return process

    def on_signal(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process in workers:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    workers.extend(start() for _ in range(config.workers))
    log.info("%d workers: %s", len(workers), " ".join(str(p.pid) for p in workers))
    last_restart = 0.0
    while True:
        if stopping:
            if not any(p.is_alive() for p in workers):
                break
        else:
            for i, process in enumerate(workers):
                if process.is_alive():
                    continue
                # Not in a tight loop if a worker cannot start at all.
                time.sleep(max(0.0, last_restart + 1.0 - time.monotonic()))
                last_restart = time.monotonic()
                log.warning(
                    "worker %s exited (%s): starting another", process.pid, process.exitcode
                )
                if metrics_folder is not None and process.pid is not None:
                    worker_gone(process.pid)
                workers[i] = start()
        time.sleep(0.1)
    reserved.close()
    if metrics_folder is not None:
        listener.close()
        shutil.rmtree(metrics_folder, ignore_errors=True)
    failed = [p.exitcode for p in workers if p.exitcode not in (0, None)]
    return 1 if failed else 0
