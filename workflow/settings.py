"""One settings object, resolved once from defaults and the environment (options override both)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .clock import parse_time


def default_data_dir() -> Path:
    """Where anjian keeps its SQLite file, evidence and outbox when nothing else is said."""
    from platformdirs import user_data_path

    return user_data_path("anjian", appauthor=False)


@dataclass(frozen=True)
class Settings:
    db_url: str
    data_dir: Path
    evidence_dir: Path
    outbox: Path
    now: dt.datetime
    as_user: str | None

    @property
    def is_default_db(self) -> bool:
        return self.db_url == f"sqlite:///{self.data_dir / 'anjian.db'}"


def resolve(
    db: str | None = None,
    now: str | None = None,
    as_user: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from the options given, then ANJIAN_* variables, then the defaults."""
    env = os.environ if env is None else env
    data_dir = Path(env.get("ANJIAN_HOME") or default_data_dir())
    db_url = db or env.get("ANJIAN_DB") or f"sqlite:///{data_dir / 'anjian.db'}"
    if "://" not in db_url:  # a bare path is an SQLite file
        db_url = f"sqlite:///{Path(db_url).expanduser().resolve()}"
    now_text = now or env.get("ANJIAN_NOW")
    moment = parse_time(now_text, "--now/ANJIAN_NOW") if now_text else dt.datetime.now(dt.UTC)
    sqlite_dir = _sqlite_dir(db_url)
    home = sqlite_dir or data_dir
    return Settings(
        db_url=db_url,
        data_dir=data_dir,
        evidence_dir=Path(env.get("ANJIAN_EVIDENCE") or home / "evidence"),
        outbox=Path(env.get("ANJIAN_OUTBOX") or home / "outbox"),
        now=moment,
        as_user=as_user or env.get("ANJIAN_USER") or None,
    )


def _sqlite_dir(url: str) -> Path | None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != prefix and ":memory:" not in url:
        return Path(url[len(prefix):]).parent
    return None
