"""`anjian login`, `anjian logout` (this OS account's sign-in to a service) and `anjian token …`.

`login` and `logout` speak to the service themselves (they are what makes the CLI its client); `token`
commands are ordinary commands over the credentials service, run embedded or, through the client, on
the service."""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from urllib.parse import urlsplit

import click

from anjian.i18n import _
from anjian.workflow.cli.common import command, emit, format_option

TIMEOUT = 30.0  # seconds: a sign-in hashes a password (a tenth of a second) and writes two rows


def _read_secret(prompt: str, from_stdin: bool, confirm: bool = False) -> str:
    """A password: the next line of standard input (scripts), else asked without echo (twice to confirm)."""
    from anjian.workflow.errors import BadInput

    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise BadInput(_("--password-stdin: standard input ended before the password"))
        return line.rstrip("\r\n")
    return click.prompt(prompt, hide_input=True, confirmation_prompt=_("Again") if confirm else False,
                        show_default=False, err=True)


def _server_url(text: str) -> str:
    """The server's base URL, refused unless http(s); a warning for plain HTTP beyond this machine."""
    from anjian.workflow.errors import BadInput

    url = text.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(_("--server {url}: give the service's address as http:// or https://HOST[:PORT]").format(url=text))
    if parts.scheme == "http" and not _loopback(parts.hostname):
        click.echo(_("Warning: {url} is plain HTTP to another machine: the password and the token cross the network "
                     "unencrypted. Use https://.").format(url=url), err=True)
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _post(url: str, path: str, body: dict | None = None, token: str | None = None):
    """POST to the service; an unreachable or non-anjian server is bad input naming it."""
    import httpx

    from anjian.i18n import current
    from anjian.workflow.errors import BadInput

    headers = {"Accept-Language": current()}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = httpx.post(url + "/api/v1" + path, json=body or {}, headers=headers, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise BadInput(_("cannot reach the service at {url}: {error}").format(url=url, error=exc)) from None
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BadInput(_("{url} did not answer as an anjian service (HTTP {status})").format(
            url=url, status=response.status_code))
    return response.status_code, data


def _refused(data: dict, url: str):
    from anjian.workflow.errors import BadInput, NotPermitted

    error = data.get("error") if isinstance(data.get("error"), dict) else {}
    message = str(error.get("message") or _("{url} refused the sign-in").format(url=url))
    return (BadInput if error.get("exit") == 2 else NotPermitted)(message)


def write_client_config(config: dict) -> None:
    """Write the client's file (folder 0700, file 0600, replaced whole)."""
    from anjian.workflow.settings import client_config_path

    path = client_config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(config, fh, ensure_ascii=False, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


@click.command()
@click.option("--server", required=True, metavar="URL", help="The service's address, e.g. https://anjian.example.gov.cn.")
@click.option("--user", metavar="NAME", help="The official to sign in as (default: this OS account's name).")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from standard input (a script; a new one on the next line if it must change).")
@command
def login(env, server, user, password_stdin) -> None:
    """Sign in to an anjian service and keep a token for this OS account (a file only it can read).

    \b
    Example:
        anjian login --server https://anjian.example.gov.cn --user 王站长
    """
    from anjian.states.labels import ROLE_NAMES
    from anjian.workflow.services.officials import os_login
    from anjian.workflow.settings import client_config_path

    url = _server_url(server)
    name = user or os_login()
    password = _read_secret(_("Password of {name}").format(name=name), password_stdin)
    status, data = _post(url, "/signin", {"username": name, "password": password})
    if status == 403 and isinstance(data.get("error"), dict) and data["error"].get("must_change"):
        click.echo(_("The password was set by an admin: choose a new one (at least 10 characters)."), err=True)
        new = _read_secret(_("New password"), password_stdin, confirm=True)
        status, data = _post(url, "/signin", {"username": name, "password": password, "new_password": new})
    if status != 200 or not isinstance(data.get("token"), str):
        raise _refused(data, url)
    write_client_config({"server": url, "token": data["token"], "token_id": data.get("id"),
                         "user": data.get("official", name)})
    role = ROLE_NAMES[data["role"]] if data.get("role") in ROLE_NAMES else data.get("role", "")
    click.echo(_("Signed in to {url} as {name} ({role}); the token is kept in {file} until {expires}").format(
        url=url, name=data.get("official", name), role=role, file=client_config_path(),
        expires=_shown(data.get("expires_at"))))


def _shown(text: str | None) -> str:
    import datetime as dt

    from anjian.workflow.clock import SHANGHAI

    try:
        return dt.datetime.fromisoformat(str(text)).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(text)


@click.command()
@command
def logout(env) -> None:
    """Sign out: revoke this OS account's token on the service and delete the file that kept it.

    \b
    Example:
        anjian logout
    """
    from anjian.workflow.errors import BadInput
    from anjian.workflow.settings import client_config_path

    path = client_config_path()
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(_("not signed in: {file} does not exist").format(file=path)) from None
    except (OSError, ValueError) as exc:
        path.unlink(missing_ok=True)
        raise BadInput(_("{file} could not be read ({error}); it is deleted, the token in it stays valid until it "
                         "expires or is revoked (anjian token revoke)").format(file=path, error=exc)) from None
    server, token = config.get("server"), config.get("token")
    path.unlink()
    try:
        status, data = _post(str(server), "/signout", token=str(token))
    except BadInput as exc:
        raise BadInput(_("{file} is deleted, but the token was not revoked on the service: {error}").format(
            file=path, error=exc.message)) from None
    if status not in (200, 401):  # 401: the token had expired or was revoked already
        raise _refused(data, str(server))
    click.echo(_("Signed out of {url}: the token {id} is revoked and {file} deleted").format(
        url=server, id=config.get("token_id") or "?", file=path))


@click.group()
def token() -> None:
    """API tokens of the service: create, list, revoke (an official their own; an admin anyone's).

    \b
    Example:
        anjian token create 王站长 --label 报表脚本 --days 30
    """


@token.command("create")
@click.argument("name")
@click.option("--label", metavar="TEXT", help="What the token is for (shown by `token list`).")
@click.option("--days", type=int, metavar="N", help="Days until it expires (default: the service's token_days, 90).")
@command
def token_create(env, name, label, days) -> None:
    """Create a token for an official and print it alone on standard output (it is shown only once).

    \b
    Example:
        anjian token create 王站长 --label 报表脚本 --days 30 > token.txt
    """
    from anjian.workflow.services import credentials

    issued = credentials.create_token(env.database(), env.actor, name, env.write_now, label=label, days=days)
    click.echo(issued.secret)
    click.echo(_("Token {id} of {name}, valid until {expires}: keep it secret; it is not shown again").format(
        id=issued.id, name=issued.official, expires=_shown(issued.expires_at.isoformat())), err=True)


@token.command("list")
@click.option("--all", "everyone", is_flag=True, help="Everyone's tokens and sessions (admins only).")
@format_option(("table", "json"))
@command
def token_list(env, everyone, fmt) -> None:
    """List the valid tokens and sessions: one's own, or everyone's with --all (admins).

    \b
    Example:
        anjian token list --all
    """
    from anjian.workflow.clock import shown
    from anjian.workflow.formats import output as render
    from anjian.workflow.services import credentials

    rows = credentials.tokens(env.database(), env.actor, env.now, everyone=everyone)
    kinds = {"token": _("token"), "session": _("browser session")}
    headers = [_("Id"), _("Official"), _("Kind"), _("Label"), _("Created"), _("Expires"), _("Last used")]
    table = [[t.id, t.official, kinds.get(t.kind, t.kind), t.label, shown(t.created_at), shown(t.expires_at),
              shown(t.last_used_at) if t.last_used_at else None] for t in rows]
    emit(fmt, lambda: render.table(headers, table) + "\n" + _("{count} in all").format(count=len(rows)),
         [t.as_json() for t in rows])


@token.command("revoke")
@click.argument("id")
@command
def token_revoke(env, id) -> None:
    """Revoke a token or session at once (one's own; an admin anyone's).

    \b
    Example:
        anjian token revoke t3f9a0c12de
    """
    from anjian.workflow.services import credentials

    t = credentials.revoke(env.database(), env.actor, id, env.write_now)
    click.echo(_("Revoked {id} of {name}").format(id=t.id, name=t.official))
