"""The service's own settings: where it listens, who may vouch for a user (a trusted proxy), how long
credentials live, and the limits on what a request may send. From the config file's [service] table,
then ANJIAN_SERVE_* variables, then these defaults."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from anjian.i18n import _
from anjian.workflow.errors import BadInput
from anjian.workflow.settings import Settings, config_value


@dataclass(frozen=True)
class ServiceConfig:
    host: str = "127.0.0.1"
    port: int = 8130
    # Browsers get the session cookie only over HTTPS (Secure); false only for plain-HTTP tests on loopback.
    cookie_secure: bool = True
    token_days: int = 90
    session_minutes: int = 480
    failures_per_account: int = 5
    failures_per_address: int = 20
    failure_window_minutes: int = 15
    max_body_bytes: int = 1 * 2**20  # a JSON request; uploads have their own limit (evidence_max_bytes)
    max_upload_bytes: int = 100 * 2**20
    trusted_proxies: tuple[str, ...] = ()  # addresses or networks whose proxy_header is believed
    proxy_header: str = "X-Remote-User"
    metrics_from: tuple[str, ...] = ()  # networks that may read /metrics without signing in (beside loopback)
    forwarded_for: bool = False  # take the client address from X-Forwarded-For when a trusted proxy sends it
    scheduler: bool = True
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    workers_threads: int = 40  # commands run in this many threads at most
    extra: dict = field(default_factory=dict, compare=False)

    def proxy_networks(self) -> list:
        return [ipaddress.ip_network(p, strict=False) for p in self.trusted_proxies]

    def credential_limits(self):
        from anjian.workflow.services.credentials import Limits

        return Limits(token_days=self.token_days, session_minutes=self.session_minutes,
                      failures_per_account=self.failures_per_account, failures_per_address=self.failures_per_address,
                      failure_window_minutes=self.failure_window_minutes)


_INTS = ("port", "token_days", "session_minutes", "failures_per_account", "failures_per_address",
         "failure_window_minutes", "max_body_bytes", "max_upload_bytes", "workers_threads")
_BOOLS = ("cookie_secure", "forwarded_for", "scheduler")
_TEXTS = ("host", "proxy_header", "ssl_certfile", "ssl_keyfile")


def service_config(settings: Settings, **given) -> ServiceConfig:
    """The [service] settings; `given` (command-line options) win over file and environment."""
    values: dict = {}
    env = settings.env
    for key in (*_INTS, *_BOOLS, *_TEXTS, "trusted_proxies", "metrics_from"):
        value = config_value(settings.data_dir, env, "service", key)
        text = env.get(f"ANJIAN_SERVE_{key.upper()}")
        if text is not None:
            value = text
        if given.get(key) is not None:
            value = given[key]
        if value is None:
            continue
        values[key] = _typed(key, value)
    if "max_upload_bytes" not in values:
        from anjian.workflow.settings import limits_settings

        values["max_upload_bytes"] = limits_settings(settings.data_dir, env).evidence_max_bytes
    config = ServiceConfig(**values)
    try:
        config.proxy_networks()
    except ValueError as exc:
        raise BadInput(_("[service] trusted_proxies: {error}").format(error=exc)) from None
    try:
        [ipaddress.ip_network(n, strict=False) for n in config.metrics_from]
    except ValueError as exc:
        raise BadInput(_("[service] metrics_from: {error}").format(error=exc)) from None
    return config


def _typed(key: str, value: object) -> object:
    where = f"[service] {key} / ANJIAN_SERVE_{key.upper()}"
    if key in _INTS:
        try:
            number = int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise BadInput(_("{where}: {value!r} is not a whole number").format(where=where, value=value)) from None
        if number < 0 or (key == "port" and number > 65535):
            raise BadInput(_("{where}: {value!r} is out of range").format(where=where, value=value))
        return number
    if key in _BOOLS:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise BadInput(_("{where}: {value!r} is not true or false").format(where=where, value=value))
    if key in ("trusted_proxies", "metrics_from"):
        items = value if isinstance(value, list) else str(value).replace(",", " ").split()
        return tuple(str(v).strip() for v in items if str(v).strip())
    return str(value)
