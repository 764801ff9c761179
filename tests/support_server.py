"""A real `anjian serve` application on loopback for the tests: uvicorn in a thread of the test process,
over the test's database, so that time-machine moves the service's clock with the test's. Tokens for
the test officials are issued through the credentials service."""

from __future__ import annotations

import datetime as dt
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from anjian.workflow.store.db import Database


@dataclass
class Served:
    url: str
    db: Database
    state: object  # server.app.ServiceState
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, official: str) -> str:
        """A token of `official` (issued once, then reused)."""
        if official not in self.tokens:
            from anjian.workflow.services import credentials

            self.tokens[official] = credentials.issue(self.db, official, "admin", dt.datetime.now(dt.UTC)).secret
        return self.tokens[official]


@contextmanager
def serving(db: Database, settings, **config) -> Iterator[Served]:
    """Serve `db` on 127.0.0.1 (a free port) until the block ends; `config` sets ServiceConfig fields
    (cookie_secure is False by default here: the tests speak plain HTTP on loopback)."""
    import uvicorn

    from anjian.workflow.server import capture
    from anjian.workflow.server.app import ServiceState, create_app
    from anjian.workflow.server.config import ServiceConfig

    config.setdefault("cookie_secure", False)
    config.setdefault("scheduler", False)
    state = ServiceState(settings, db, ServiceConfig(**config))
    state.ready = True
    capture.install()
    app = create_app(state)
    # IPPROTO_TCP named, so that asyncio sets TCP_NODELAY on each accepted connection (as on uvicorn's own
    # sockets): with proto 0 it does not, and a kept-alive connection's answers wait 40 ms for delayed ACKs
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # the server's own start, not a guess of how long it takes
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield Served(f"http://127.0.0.1:{port}", db, state)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


# -- the real `anjian serve` process -------------------------------------------------------------

ANJIAN = str(Path(sys.executable).with_name("anjian"))


def _env(db_url: str, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANJIAN_") or k == "ANJIAN_LANG"}
    env.update(ANJIAN_DB=db_url, ANJIAN_HOME=str(home), ANJIAN_LANG="zh", **extra)
    return env


@dataclass
class Process:
    proc: subprocess.Popen
    url: str
    lines: queue.Queue
    log: list[str] = field(default_factory=list)

    def wait_for(self, pattern: str) -> str:
        """The next stderr line matching `pattern` (blocks on the process's own output, no sleeping)."""
        while True:
            line = self.lines.get(timeout=120)
            if line is None:
                raise AssertionError("serve ended before printing " + pattern + ":\n" + "".join(self.log))
            if re.search(pattern, line):
                return line


@contextmanager
def serve(db_url: str, home: Path, *args: str) -> Iterator[Process]:
    """`anjian serve --port 0 ARGS…` until the block ends (SIGTERM, then waited for)."""
    proc = subprocess.Popen([ANJIAN, "serve", "--port", "0", *args], env=_env(db_url, home),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    lines: queue.Queue = queue.Queue()
    log: list[str] = []

    def read() -> None:
        for line in proc.stderr:
            log.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    p = Process(proc, "", lines, log)
    started = p.wait_for(r"Uvicorn running on https?://")
    p.url = re.search(r"(https?://[0-9.]+:\d+)", started).group(1)
    try:
        yield p
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
