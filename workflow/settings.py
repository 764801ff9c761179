"""One settings object, resolved once from defaults and the environment (options override both)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from anjian.workflow.clock import parse_time


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
    if now is not None:  # given, even empty: an empty --now is a mistake, not "the real clock"
        moment = parse_time(now, "--now")
    elif env.get("ANJIAN_NOW"):
        moment = parse_time(env["ANJIAN_NOW"], "ANJIAN_NOW")
    else:
        moment = dt.datetime.now(dt.UTC)
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


@dataclass(frozen=True)
class NotifySettings:
    """How notices go out: the e-mail channel (file outbox or SMTP), language, sender, daemon times."""

    channel: str = "file"
    language: str = "zh"
    sender: str = "承德市安全生产委员会办公室 <anjian@localhost>"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_security: str = "none"
    smtp_user: str | None = None
    smtp_password: str | None = None
    webhook_style: str = "wecom"
    webhook_timeout: float = 10.0
    daemon_at: str = "08:30"
    retry_minutes: int = 5
    lease_minutes: int = 15


_NOTIFY_ENV = {
    "ANJIAN_CHANNEL": "channel", "ANJIAN_LANGUAGE": "language", "ANJIAN_MAIL_FROM": "sender",
    "ANJIAN_SMTP_HOST": "smtp_host", "ANJIAN_SMTP_PORT": "smtp_port", "ANJIAN_SMTP_SECURITY": "smtp_security",
    "ANJIAN_SMTP_USER": "smtp_user", "ANJIAN_SMTP_PASSWORD": "smtp_password", "ANJIAN_DAEMON_AT": "daemon_at",
    "ANJIAN_WEBHOOK_STYLE": "webhook_style",
}
_FILE_KEYS = {
    ("notify", "channel"): "channel", ("notify", "language"): "language", ("notify", "sender"): "sender",
    ("smtp", "host"): "smtp_host", ("smtp", "port"): "smtp_port", ("smtp", "security"): "smtp_security",
    ("smtp", "user"): "smtp_user", ("smtp", "password"): "smtp_password", ("webhook", "style"): "webhook_style",
    ("webhook", "timeout"): "webhook_timeout", ("daemon", "at"): "daemon_at", ("daemon", "retry_minutes"): "retry_minutes",
    ("daemon", "lease_minutes"): "lease_minutes",
}


def notify_settings(data_dir: Path, env: Mapping[str, str] | None = None) -> NotifySettings:
    """Notification settings from the defaults, then the config file (ANJIAN_CONFIG or
    <data dir>/config.toml), then ANJIAN_* variables; a bad value is refused with its source."""
    import dataclasses
    import tomllib

    from anjian.workflow.errors import BadInput

    env = os.environ if env is None else env
    values: dict[str, object] = {}
    path = Path(env.get("ANJIAN_CONFIG") or data_dir / "config.toml")
    if path.exists():
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(f"config file {path}: {exc}") from None
        for (table, key), field_name in _FILE_KEYS.items():
            if key in data.get(table, {}):
                values[field_name] = data[table][key]
    for var, field_name in _NOTIFY_ENV.items():
        if env.get(var):
            values[field_name] = env[var]
    types = {f.name: f.type for f in dataclasses.fields(NotifySettings)}
    for name, value in list(values.items()):
        try:
            if types[name] == "int":
                values[name] = int(value)
            elif types[name] == "float":
                values[name] = float(value)
        except ValueError:
            raise BadInput(f"setting {name} must be a number, not {value!r}") from None
    result = NotifySettings(**values)
    checks = [("channel", ("file", "smtp")), ("language", ("zh", "en")), ("smtp_security", ("none", "starttls", "tls")),
              ("webhook_style", ("wecom", "dingtalk"))]
    for name, allowed in checks:
        if getattr(result, name) not in allowed:
            raise BadInput(f"setting {name} must be one of {', '.join(allowed)}, not {getattr(result, name)!r}")
    return result
