"""One settings object, resolved once from defaults, the config file and the environment (options
override all three). This is the one module that reads the process environment: every other module
asks a `Settings` (or a function here) for what it needs."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from anjian.i18n import _
from anjian.workflow.clock import parse_time


def environ() -> Mapping[str, str]:
    """The process environment, read here alone (the default of every `env` argument below)."""
    return os.environ


def client_config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where `anjian login` keeps the server and the token of this OS account (a file of mode 0600):
    ANJIAN_CLIENT_CONFIG, else the user's config folder's anjian/client.json."""
    env = environ() if env is None else env
    if env.get("ANJIAN_CLIENT_CONFIG"):
        return Path(env["ANJIAN_CLIENT_CONFIG"])
    from platformdirs import user_config_path

    return user_config_path("anjian", appauthor=False) / "client.json"


def default_data_dir() -> Path:
    """Where anjian keeps its SQLite file, evidence and outbox when nothing else is said."""
    from platformdirs import user_data_path

    return user_data_path("anjian", appauthor=False)


@dataclass(frozen=True)
class Settings:
    """Everything a command runs with. `now_given` tells whether --now or ANJIAN_NOW set `now` (rather
    than the real clock); `notify` (the notification settings) is read from the config file on first use,
    so that a bad config file troubles only the commands that send notices."""

    db_url: str
    data_dir: Path
    evidence_dir: Path
    outbox: Path
    now: dt.datetime
    as_user: str | None
    now_given: bool = False
    now_source: str | None = None  # "--now" or "ANJIAN_NOW" when one of them set `now`: named in refusals
    audit_key: Path | None = None  # ANJIAN_AUDIT_KEY, else the data folder's keys/audit-signing-key.pem
    # Files: the group that may share them (ANJIAN_FILE_GROUP: 0660 files, 0770 folders; else 0600 and
    # 0700), and how long a writer waits for another's lock, in seconds (ANJIAN_BUSY_TIMEOUT, else 60).
    file_group: str | None = None
    busy_timeout: float = 60.0
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_default_db(self) -> bool:
        return self.db_url == f"sqlite:///{self.data_dir / 'anjian.db'}"

    @cached_property
    def notify(self) -> NotifySettings:
        return notify_settings(self.data_dir, self.env)

    @cached_property
    def audit_public_key(self) -> Path:
        """The public key checkpoints are verified with: ANJIAN_AUDIT_PUBLIC_KEY, else `public_key` in the
        config file's [audit] table, else the one `audit checkpoint` writes beside the signing key."""
        given = self.env.get("ANJIAN_AUDIT_PUBLIC_KEY") or config_value(self.data_dir, self.env, "audit", "public_key")
        if given:
            return Path(str(given)).expanduser()
        return self.audit_key.with_suffix(".pub")

    @cached_property
    def limits(self) -> Limits:
        return limits_settings(self.data_dir, self.env)

    @cached_property
    def forecast(self) -> ForecastSettings:
        return forecast_settings(self.data_dir, self.env)


def resolve(
    db: str | None = None,
    now: str | None = None,
    as_user: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from the options given, then ANJIAN_* variables, then the defaults."""
    env = dict(environ() if env is None else env)  # a snapshot: resolved once, as the command started
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
        now_given=bool(now or env.get("ANJIAN_NOW")),
        now_source="--now" if now else "ANJIAN_NOW" if env.get("ANJIAN_NOW") else None,
        audit_key=Path(env.get("ANJIAN_AUDIT_KEY") or _default_audit_key(data_dir)),
        file_group=env.get("ANJIAN_FILE_GROUP") or None,
        busy_timeout=_seconds(env.get("ANJIAN_BUSY_TIMEOUT"), "ANJIAN_BUSY_TIMEOUT", 60.0),
        env=env,
    )


def _seconds(text: str | None, name: str, default: float) -> float:
    from anjian.workflow.errors import BadInput

    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 86400:
        raise BadInput(_("{name} must be a number of seconds (0 to 86400), not {text!r}").format(name=name, text=text))
    return value


def _default_audit_key(data_dir: Path) -> Path:
    """The signing key in a folder of its own (made 0700), or where an older version kept it."""
    legacy = data_dir / "audit-signing-key.pem"
    return legacy if legacy.exists() else data_dir / "keys" / "audit-signing-key.pem"


def config_value(data_dir: Path, env: Mapping[str, str], table: str, key: str) -> object | None:
    """One value of the config file (ANJIAN_CONFIG or <data dir>/config.toml), or None."""
    import tomllib

    from anjian.workflow.errors import BadInput

    path = Path(env.get("ANJIAN_CONFIG") or data_dir / "config.toml")
    if not path.exists():
        return None
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(_("config file {path}: {reason}").format(path=path, reason=exc)) from None
    except OSError as exc:
        raise BadInput(_("the config file {path} cannot be read: {reason}").format(path=path, reason=exc.strerror)) from None
    return data.get(table, {}).get(key)


def _sqlite_dir(url: str) -> Path | None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != prefix and ":memory:" not in url:
        return Path(url[len(prefix):]).parent
    return None


# -- the reminder pass: its chunks and, for the crash tests, its fault point (read here alone) ----------
CHUNK = 5000  # notices claimed in one transaction: each claim rewrites index pages of the notices
# before it: a national pass in chunks of 1000 wrote 680 MB to SQLite's files, of 5000, 320 MB


@dataclass(frozen=True)
class PassTuning:
    """How a reminder pass runs rather than what it sends: how many notices it claims at a time
    (ANJIAN_REMIND_CHUNK) and, for the crash tests alone, the fault point it is killed at (ANJIAN_FAULT,
    once it has passed it ANJIAN_FAULT_SKIP times). Handed down to the pass with the settings."""

    chunk_text: str = ""  # ANJIAN_REMIND_CHUNK as given: checked when a pass starts (`chunk`)
    fault: str | None = None
    fault_skip: int = 0

    def chunk(self) -> int:
        """Notices per chunk: ANJIAN_REMIND_CHUNK, or 5000."""
        from anjian.workflow.errors import BadInput

        text = self.chunk_text
        if not text:
            return CHUNK
        if not (text.isascii() and text.isdigit() and int(text) >= 1):
            raise BadInput(_("ANJIAN_REMIND_CHUNK must be a whole number of notices, at least 1, not {text!r}")
                           .format(text=text))
        return int(text)


def pass_tuning(env: Mapping[str, str] | None = None) -> PassTuning:
    """The pass's tuning from ANJIAN_REMIND_CHUNK, ANJIAN_FAULT and ANJIAN_FAULT_SKIP."""
    env = environ() if env is None else env
    skip = (env.get("ANJIAN_FAULT_SKIP") or "").strip()
    return PassTuning(env.get("ANJIAN_REMIND_CHUNK", "").strip(), env.get("ANJIAN_FAULT") or None,
                      int(skip) if skip.isdigit() else 0)


def helper_environment(pass_pid: int) -> dict[str, str]:
    """The environment of a pass's helper process (the outbox writer): this process's, labelled
    ANJIAN_PASS_PID=<the pass's process id> so that a pass's helpers can be found in /proc. The helper
    reads nothing from it: its outbox and fault plan come in its first message."""
    return {**environ(), "ANJIAN_PASS_PID": str(pass_pid)}


@dataclass(frozen=True)
class NotifySettings:
    """How notices go out: the e-mail channel (file outbox or SMTP), language, sender, daemon times."""

    channel: str = "file"
    language: str = "zh"
    sender: str = ""  # none set: the campaign's issuer at anjian@localhost (reminders.run)
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
    drill: bool = False  # set by the pass from the database (never from the config): notices say 演练
    # when a forecast is a warning (预警), and whether the pass sends it: the config file's [forecast]
    forecast: ForecastSettings = field(default_factory=lambda: ForecastSettings())
    # Settings a channel declares (anjian.notifications.channels) that have no field above, by name.
    extra: tuple[tuple[str, object], ...] = ()
    tuning: PassTuning = field(default_factory=lambda: pass_tuning(), compare=False)

    def value(self, name: str) -> object:
        """A setting by name, as a channel reads it: a field above, or one in `extra`."""
        for key, value in self.extra:
            if key == name:
                return value
        if hasattr(self, name):
            return getattr(self, name)
        from anjian.notifications.channels import declared_settings  # made in code: a channel's default

        for s in declared_settings():
            if s.name == name:
                return s.default
        raise AttributeError(name)


# The settings of no channel; each channel declares its own (notifications/channels, `Setting`).
_NOTIFY_ENV = {"ANJIAN_LANGUAGE": "language", "ANJIAN_DAEMON_AT": "daemon_at"}
_FILE_KEYS = {
    ("notify", "language"): "language", ("daemon", "at"): "daemon_at", ("daemon", "retry_minutes"): "retry_minutes",
    ("daemon", "lease_minutes"): "lease_minutes",
}
_ALLOWED = {"language": ("zh", "en")}


def notify_settings(data_dir: Path, env: Mapping[str, str] | None = None) -> NotifySettings:
    """Notification settings from the defaults, then the config file (ANJIAN_CONFIG or
    <data dir>/config.toml), then ANJIAN_* variables; a bad value is refused with its source."""
    import dataclasses
    import tomllib

    from anjian.notifications.channels import declared_settings
    from anjian.workflow.errors import BadInput

    env = environ() if env is None else env
    declared = declared_settings()
    file_keys = {**{(s.table, s.key): s.name for s in declared}, **_FILE_KEYS}
    env_keys = {**{s.env: s.name for s in declared if s.env}, **_NOTIFY_ENV}
    values: dict[str, object] = {}
    path = Path(env.get("ANJIAN_CONFIG") or data_dir / "config.toml")
    if path.exists():
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(_("config file {path}: {reason}").format(path=path, reason=exc)) from None
        for (table, key), field_name in file_keys.items():
            if key in data.get(table, {}):
                values[field_name] = data[table][key]
    for var, field_name in env_keys.items():
        if env.get(var):
            values[field_name] = env[var]
    types = {f.name: f.type for f in dataclasses.fields(NotifySettings)} | {s.name: s.kind.__name__ for s in declared}
    for name, value in list(values.items()):
        try:
            if types[name] == "int":
                values[name] = int(value)
            elif types[name] == "float":
                values[name] = float(value)
            elif types[name] == "tuple" and isinstance(value, str):  # from the environment: a,b,c
                values[name] = tuple(part for part in value.split(",") if part.strip())
        except ValueError:
            raise BadInput(_("setting {name} must be a number, not {value!r}").format(name=name, value=value)) from None
    for s in declared:
        if s.check and s.name in values:
            try:
                values[s.name] = s.check(values[s.name])
            except ValueError as exc:
                raise BadInput(_("setting {name} is wrong: {reason}").format(name=s.name, reason=exc)) from None
    fields = {f.name for f in dataclasses.fields(NotifySettings)}
    extra = tuple((s.name, values.pop(s.name, s.default)) for s in declared if s.name not in fields)
    result = NotifySettings(**values, extra=extra, tuning=pass_tuning(env), forecast=forecast_settings(data_dir, env))
    checks = [*((s.name, s.allowed) for s in declared if s.allowed), *_ALLOWED.items()]
    for name, allowed in checks:
        if result.value(name) not in allowed:
            raise BadInput(_("setting {name} must be one of {allowed}, not {value!r}").format(
                name=name, allowed=", ".join(allowed), value=result.value(name)))
    return result


# -- limits: how much one command may be handed (config file [limits], or ANJIAN_* variables) ----------
@dataclass(frozen=True)
class Limits:
    """The most a batch file or an evidence file may hold; beyond it the command is refused before any
    work. The default rows fit the national registry's 41,352 townships in one file."""

    batch_max_rows: int = 50_000
    batch_max_bytes: int = 16 * 2**20
    evidence_max_bytes: int = 100 * 2**20


LIMIT_ENV = {"batch_max_rows": "ANJIAN_BATCH_MAX_ROWS", "batch_max_bytes": "ANJIAN_BATCH_MAX_BYTES",
             "evidence_max_bytes": "ANJIAN_EVIDENCE_MAX_BYTES"}
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}


def limits_settings(data_dir: Path, env: Mapping[str, str] | None = None) -> Limits:
    """Limits from the defaults, then the config file's [limits] table, then ANJIAN_* variables. A size
    may be a number of bytes or carry a unit (16MiB, 100 MB, 2G); a bad value is refused with its source."""
    import tomllib

    from anjian.workflow.errors import BadInput

    env = environ() if env is None else env
    given: dict[str, tuple[object, str]] = {}
    path = Path(env.get("ANJIAN_CONFIG") or data_dir / "config.toml")
    if path.exists():
        try:
            table = tomllib.loads(path.read_text("utf-8")).get("limits", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(_("config file {path}: {reason}").format(path=path, reason=exc)) from None
        given |= {k: (v, f"{path} [limits] {k}") for k, v in table.items() if k in LIMIT_ENV}
    given |= {k: (env[var], var) for k, var in LIMIT_ENV.items() if env.get(var)}
    values = {}
    for name, (value, source) in given.items():
        number = _amount(value)
        if number is None or number < 1:
            raise BadInput(_("setting {source} must be a positive whole number (a size may carry a unit, e.g. "
                             "16MiB), not {value!r}").format(source=source, value=value))
        values[name] = number
    return Limits(**values)


def _amount(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip().lower().replace(" ", "").replace("_", "").removesuffix("ib").removesuffix("b")
    unit = text[-1:] if text[-1:] in _UNITS else ""
    digits = text[: len(text) - len(unit)]
    return int(digits) * _UNITS[unit] if digits.isascii() and digits.isdigit() else None


# -- the early warning (预警): when a forecast becomes a warning (config file [forecast], or ANJIAN_*) ----
@dataclass(frozen=True)
class ForecastSettings:
    """A coming milestone is warned of when it is less likely than `threshold` to be met by its deadline
    at the county's present pace, and its deadline is at most `horizon_days` away."""

    threshold: float = 0.5
    horizon_days: int = 60
    notify: bool = True  # the reminder pass sends each warning to the county and its city office, once a week


FORECAST_ENV = {"threshold": "ANJIAN_FORECAST_THRESHOLD", "horizon_days": "ANJIAN_FORECAST_HORIZON",
                "notify": "ANJIAN_FORECAST_NOTIFY"}
SWITCH = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


def forecast_settings(data_dir: Path, env: Mapping[str, str] | None = None) -> ForecastSettings:
    """The warning's threshold and horizon, and whether the pass sends warnings, from the defaults, then the
    config file's [forecast] table (`threshold`, `horizon_days`, `notify`), then ANJIAN_FORECAST_THRESHOLD,
    ANJIAN_FORECAST_HORIZON and ANJIAN_FORECAST_NOTIFY."""
    from anjian.workflow.errors import BadInput

    env = environ() if env is None else env
    given: dict[str, tuple[object, str]] = {}
    for name in FORECAST_ENV:
        value = config_value(data_dir, env, "forecast", name)
        if value is not None:
            given[name] = (value, f"[forecast] {name}")
    given |= {k: (env[var], var) for k, var in FORECAST_ENV.items() if env.get(var)}
    values: dict[str, object] = {}
    if "threshold" in given:
        value, source = given["threshold"]
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            number = -1.0
        if not 0 < number <= 1:
            raise BadInput(_("setting {source} must be a probability between 0 and 1, not {value!r}").format(
                source=source, value=value))
        values["threshold"] = number
    if "horizon_days" in given:
        value, source = given["horizon_days"]
        text = str(value).strip()
        if isinstance(value, bool) or not (text.isascii() and text.isdigit() and 1 <= int(text) <= 3660):
            raise BadInput(_("setting {source} must be a whole number of days (1 to 3660), not {value!r}").format(
                source=source, value=value))
        values["horizon_days"] = int(text)
    if "notify" in given:
        value, source = given["notify"]
        switch = value if isinstance(value, bool) else SWITCH.get(str(value).strip().lower())
        if switch is None:
            raise BadInput(_("setting {source} must be true or false, not {value!r}").format(source=source, value=value))
        values["notify"] = switch
    return ForecastSettings(**values)  # type: ignore[arg-type]
