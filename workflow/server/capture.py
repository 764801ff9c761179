"""What a command prints, caught per request: sys.stdout and sys.stderr are replaced, once, by proxies
that write to the current request's buffers (a ContextVar), or to the real streams outside a request.
Commands run in worker threads, each request in its own context, so their outputs never mix."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class Buffers:
    stdout: io.TextIOWrapper = field(default_factory=lambda: _text())
    stderr: io.TextIOWrapper = field(default_factory=lambda: _text())
    stdin: io.TextIOWrapper = field(default_factory=lambda: _text())

    def text(self, stream: io.TextIOWrapper) -> str:
        stream.flush()
        return stream.buffer.getvalue().decode("utf-8", "replace")


def _text() -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", newline="\n", write_through=True)


_CURRENT: ContextVar[Buffers | None] = ContextVar("anjian_capture", default=None)


class _Proxy:
    """A text stream that is the current request's buffer, or the process's own stream. It says it is
    UTF-8 itself: click then writes through it as it is, rather than wrapping (and caching) whichever
    stream is underneath at its first use."""

    encoding = "utf-8"
    errors = "strict"

    def __init__(self, name: str, real):
        self._name, self._real = name, real

    def _target(self):
        buffers = _CURRENT.get()
        return self._real if buffers is None else getattr(buffers, self._name)

    def __getattr__(self, attr: str):
        return getattr(self._target(), attr)

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return False if _CURRENT.get() is not None else self._real.isatty()


def install() -> None:
    """Put the proxies in place, where they are not (again, when something such as pytest's capture
    has put its own streams back since); every captured command checks."""
    for name in ("stdout", "stderr", "stdin"):
        if not isinstance(getattr(sys, name), _Proxy):
            setattr(sys, name, _Proxy(name, getattr(sys, name)))


@contextmanager
def captured() -> Iterator[Buffers]:
    """Within this block (in this context), what is printed goes to the returned buffers."""
    install()
    buffers = Buffers()
    token = _CURRENT.set(buffers)
    try:
        yield buffers
    finally:
        _CURRENT.reset(token)
