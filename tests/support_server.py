"""A real `anjian serve` application on loopback for the tests: uvicorn in a thread of the test process,
over the test's database, so that time-machine moves the service's clock with the test's. Tokens for
the test officials are issued through the credentials service."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

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
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
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
