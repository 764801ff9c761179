"""The CLI as a client of `anjian serve`: when a server is configured (ANJIAN_SERVER and ANJIAN_TOKEN for
one command, else the file `anjian login` writes), a command is parsed here by click as always, then run
by the service as the token's official, and what it printed and its exit code come back whole: the same
bytes as the command run here. Input files are uploaded first; files the command writes come back as
downloads, written where the official asked.

httpx is imported only when a command is sent, so `anjian --help` loads none of it."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import click

from anjian.i18n import _

# Commands that always run here: they set up this machine, or sign in to the server.
LOCAL_ONLY = {"login", "logout", "serve", "init", "daemon", "user passwd", "campaign add"}
CLI_MEDIA = "application/vnd.anjian.cli+json"
CHUNK = 1 << 16


class Refusal(Exception):
    """The client refuses, or the server answered with an error: shown by cli/common.fail."""

    def __init__(self, message: str, details: list[str] | None = None, code: int = 2):
        super().__init__(message)
        self.message, self.details, self.code = message, details or [], code


def fail(message: str, details: list[str] | None = None, code: int = 2) -> None:
    raise Refusal(message, details, code)


@dataclass(frozen=True)
class Server:
    url: str
    token: str


def configured(environ: dict | None = None) -> Server | None:
    """The server this command goes to: ANJIAN_SERVER with ANJIAN_TOKEN, else the client file
    (settings.client_config_path) when it names both; None for embedded mode."""
    from anjian.workflow.settings import client_config_path
    from anjian.workflow.settings import environ as process_environ

    env = process_environ() if environ is None else environ
    if env.get("ANJIAN_SERVER"):
        return Server(env["ANJIAN_SERVER"].rstrip("/"), env.get("ANJIAN_TOKEN", ""))

    path = client_config_path(env)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("server") and data.get("token"):
        return Server(str(data["server"]).rstrip("/"), str(data["token"]))
    return None


def is_local(path: list[str]) -> bool:
    return " ".join(path) in LOCAL_ONLY or (path[:1] and path[0] in LOCAL_ONLY)


def command_path(ctx: click.Context) -> list[str]:
    names = []
    c: click.Context | None = ctx
    while c is not None and c.parent is not None:
        names.append(c.info_name or c.command.name or "")
        c = c.parent
    return list(reversed(names))


def params_of(ctx: click.Context) -> dict:
    """What the official gave on the command line, by API name (runner.api_name); defaults are left to
    the service. Several flags sharing one destination (`--sent`/`--resend`) send the one given."""
    from click.core import ParameterSource

    from anjian.workflow.cli.remote_files import api_name

    params: dict = {}
    for p in ctx.command.params:
        if p.name is None or p.name not in ctx.params or p.name in ("help",):
            continue
        source = ctx.get_parameter_source(p.name)
        if source in (ParameterSource.DEFAULT, None):
            continue
        value = ctx.params[p.name]
        if isinstance(p, click.Option) and p.is_flag and not p.is_bool_flag:
            if value == p.flag_value:
                params[api_name(p)] = True
            continue
        if value is None:
            continue
        if isinstance(value, tuple | list):
            value = [str(v) if isinstance(v, Path) else v for v in value]
            if not value:
                continue
        elif isinstance(value, Path):
            value = str(value)
        params[api_name(p)] = value
    return params


def forward(ctx: click.Context, server: Server) -> None:
    """Run this command on `server` and exit as it did (never returns)."""
    from anjian.workflow.cli import remote_files

    root = ctx.find_root().ensure_object(dict)
    path = command_path(ctx)
    if root.get("as_user") is not None:
        fail(_("--as is not used with a server ({server}): you act as the official you signed in as "
               "(anjian login)").format(server=server.url))
    if root.get("db") is not None:
        fail(_("--db is not used with a server ({server}): the service owns the database; to use a database "
               "here, unset ANJIAN_SERVER or sign out (anjian logout)").format(server=server.url))
    params = params_of(ctx)
    from anjian.workflow.settings import environ

    now = root.get("now") or environ().get("ANJIAN_NOW")  # read as of a time, as embedded; a write refuses it
    if now:
        params["now"] = now
    campaign = root.get("campaign") or environ().get("ANJIAN_CAMPAIGN")
    if campaign:
        params["campaign"] = campaign
    typed: dict[str, str] = {}
    with _client(server) as client:
        for name, value in list(params.items()):
            what = remote_files.kind(path, name)
            if what is None:
                continue
            values = value if isinstance(value, list) else [value]
            if what == "server":
                fail(_("--{flag} names a file on the server's machine, which is not given from a client; "
                       "the server's administrator sets it").format(flag=name.replace("_", "-")))
            if what == "output":
                continue  # the service writes it; it comes back in the answer's files
            sent = []
            for v in values:
                prefix, file = remote_files.split_paired(str(v)) if (*path, name) in remote_files.PAIRED \
                    else ("", str(v))
                if not Path(file).exists() and not Path(file).is_symlink():
                    sent.append(prefix + "absent:" + file)  # the command says it is missing, in its own words
                    continue
                ident = upload(client, server, Path(file))
                typed[ident] = file
                sent.append(prefix + "upload:" + ident)
            params[name] = sent if isinstance(value, list) else sent[0]
            if (*path, name) == ("record", "file"):
                params["sheet_evidence"] = _sheet_evidence(client, server, Path(str(value)))
        if typed:
            params["client_files"] = typed
        answer = _send(client, server, path, params)
        for f in answer.get("files", []):
            _download(client, server, f)
    out = answer.get("stdout", "")
    err = answer.get("stderr", "")
    if out:
        click.echo(out, nl=False)
    if err:
        click.echo(err, nl=False, err=True)
    sys.exit(int(answer.get("exit", 1)))


def _client(server: Server):
    import httpx

    from anjian.i18n import current
    from anjian.workflow.formats.output import terminal_width

    headers = {"Authorization": f"Bearer {server.token}", "Accept-Language": current()}
    width = terminal_width()  # as embedded mode measures it: COLUMNS, else the terminal; None for a pipe
    if width:
        headers["X-Anjian-Columns"] = str(width)
    return httpx.Client(base_url=server.url, headers=headers, timeout=httpx.Timeout(30.0, read=None))


def _request(client, server: Server, method: str, url: str, **kwargs):
    import httpx


    try:
        response = client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        fail(_("cannot reach the anjian server {server}: {error}. Check the address and that the service runs, "
               "or sign in to another: anjian login --server URL").format(server=server.url, error=exc))
    if response.status_code == 401:
        fail(_("the anjian server {server} does not accept your sign-in (the token expired or was revoked): "
               "sign in again: anjian login").format(server=server.url), code=4)
    return response


def _error_of(response) -> tuple[int, str, list[str]] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        e = body["error"]
        return int(e.get("exit", 2)), str(e.get("message", "")), [str(d) for d in e.get("details", [])]
    return None


def _refuse(response, server: Server) -> None:

    known = _error_of(response)
    if known is not None:
        fail(known[1], known[2], known[0])
    fail(_("the anjian server {server} answered HTTP {status}: {text}").format(
        server=server.url, status=response.status_code, text=response.text[:200]))


def _send(client, server: Server, path: list[str], params: dict) -> dict:
    response = _request(client, server, "POST", "/api/v1/" + "/".join(path), json=params,
                        headers={"Accept": CLI_MEDIA})
    if response.headers.get("content-type", "").startswith(CLI_MEDIA):
        return response.json()
    _refuse(response, server)
    return {}


def upload(client, server: Server, file: Path) -> str:
    """Upload `file` (streamed; its SHA-256 computed here, checked by the server and the server's checked
    here); its upload id. A file that cannot be read is refused naming it (exit 2), nothing sent."""

    try:
        digest = hashlib.sha256()
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                digest.update(chunk)
        size = file.stat().st_size
    except OSError as exc:
        fail(_("{file}: cannot read this file: {reason}").format(file=file, reason=exc.strerror or exc))
    sha = digest.hexdigest()

    def chunks():
        with open(file, "rb") as fh:
            yield from iter(lambda: fh.read(CHUNK), b"")

    response = _request(client, server, "POST", "/api/v1/uploads", content=chunks(), headers={
        "Content-Length": str(size), "X-Anjian-SHA256": sha, "Content-Type": "application/octet-stream",
        "X-Anjian-Filename": quote(str(file.resolve()), safe=""), "Accept": "application/json"})
    if response.status_code != 201:
        _refuse(response, server)
    body = response.json()
    if body.get("sha256") != sha:
        fail(_("{file}: the server received other bytes than were sent (SHA-256 differs); try again")
             .format(file=file))
    return str(body["id"])


def _sheet_evidence(client, server: Server, sheet: Path) -> dict:
    """`record --file SHEET`: upload the evidence files its rows name (paths from the sheet's folder, read
    with the same reader as the service); {path as written in the sheet: upload id}."""
    from anjian.workflow.formats import tables
    from anjian.workflow.settings import Limits

    try:
        recs, _problems = tables.read_table(str(sheet), ("unit", "item", "value"),
                                            ("evidence", "label", "required", "current"), Limits())
    except Exception:  # noqa: BLE001 - the service reads the sheet again and reports what is wrong
        return {}
    uploads: dict = {}
    for rec in recs:
        text = str(rec.values.get("evidence", "") or "")
        for part in (p.strip() for p in text.replace("；", ";").split(";")):
            if not part or part in uploads:
                continue
            file = sheet.parent / part
            if file.is_file():
                uploads[part] = upload(client, server, file)
    return uploads


def _download(client, server: Server, f: dict) -> None:
    """Write a file the command made to the path the official gave (whole, or nothing)."""

    target = Path(f["name"])
    response = _request(client, server, "GET", f["download"])
    if response.status_code != 200:
        _refuse(response, server)
    data = response.content
    if hashlib.sha256(data).hexdigest() != f.get("sha256"):
        fail(_("{file}: the download from the server is damaged (SHA-256 differs); try again").format(file=target))
    from anjian.workflow.store.files import replace_whole

    try:
        replace_whole(target, data)
    except OSError as exc:
        if f.get("param") == "out":  # as embedded mode says it (cli/common.write_file)
            fail(_("--out {file}: cannot write this file: {reason}").format(file=target, reason=exc.strerror or exc))
        fail(_("{file}: cannot write this file: {reason}").format(file=target, reason=exc.strerror or exc))
