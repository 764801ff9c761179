"""(being built: see web/__init__.)"""

from __future__ import annotations


def routes() -> list:
    return []
