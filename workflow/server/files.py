"""Files over the API: uploads an official's client sends before a command that reads files, the
private folder a command's files live in while it runs, and the downloads of the files it wrote.

Uploads and downloads live under the service's data folder (uploads/, downloads/, mode 0700), each
beside a small JSON of its owner, name, digest and time; they are private to the official who sent or
caused them and expire after an hour. A command run by the service reads only uploaded files: an
input parameter must name an upload (`upload:ID`), never a path on the server."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from anjian.i18n import _
from anjian.workflow.errors import BadInput

LIFETIME = dt.timedelta(hours=1)
PREFIX = "upload:"
ABSENT = "absent:"  # `absent:PATH`: the client has no such file; the command reports it as missing


def error(exit_code: int, message: str, status: int) -> JSONResponse:
    """An error as the API answers it (as server/app.error)."""
    return JSONResponse({"error": {"exit": exit_code, "message": message, "details": []}}, status_code=status)


def _folder(state, name: str) -> Path:
    folder = Path(state.settings.data_dir) / name
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    return folder


def _meta(path: Path) -> dict | None:
    try:
        return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _expired(meta: dict, now: dt.datetime) -> bool:
    return dt.datetime.fromisoformat(meta["created"]) + LIFETIME < now


def sweep(folder: Path, now: dt.datetime) -> None:
    """Remove what expired (best effort: another request may be removing it too)."""
    for meta_path in folder.glob("*.json"):
        meta = _meta(meta_path.with_suffix(""))
        if meta is None or _expired(meta, now):
            meta_path.with_suffix("").unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)


async def upload_route(request: Request) -> Response:
    """`POST /api/v1/uploads`: the raw body streamed to a file, limited to max_upload_bytes (by
    Content-Length first, then counted), its SHA-256 checked against X-Anjian-SHA256."""
    from anjian.workflow.server import auth

    state = request.app.state.service
    who = await auth.principal(request)
    if who is None:
        return error(4, _("sign in first: no valid token or session (anjian login --server URL)"), status=401)
    most = state.config.max_upload_bytes
    name = unquote(request.headers.get("x-anjian-filename", "")) or "upload"
    expected = request.headers.get("x-anjian-sha256", "").strip().lower()
    too_big = _("{file}: the file is larger than the service accepts ({most} bytes, [service] max_upload_bytes); "
                "nothing was written").format(file=name, most=most)
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > most:
        return error(2, too_big, status=413)
    now = dt.datetime.now(dt.UTC)
    folder = _folder(state, "uploads")
    sweep(folder, now)
    ident = "u" + secrets.token_hex(12)
    target = folder / ident
    digest, size = hashlib.sha256(), 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in request.stream():
                size += len(chunk)
                if size > most:
                    raise OverflowError
                digest.update(chunk)
                fh.write(chunk)
    except OverflowError:
        target.unlink(missing_ok=True)
        return error(2, too_big, status=413)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    sha = digest.hexdigest()
    if expected and expected != sha:
        target.unlink(missing_ok=True)
        return error(2, _("{file}: the bytes received differ from the SHA-256 the client gave; send it again; "
                          "nothing was written").format(file=name), status=400)
    meta = {"id": ident, "owner": who.actor.name, "name": name, "sha256": sha, "size": size,
            "created": now.isoformat()}
    target.with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return JSONResponse({"id": ident, "sha256": sha, "size": size, "name": name}, status_code=201)


async def download_route(request: Request) -> Response:
    """`GET /api/v1/downloads/ID`: a file a command wrote, for the official who ran it, until it expires."""
    from anjian.workflow.server import auth

    state = request.app.state.service
    who = await auth.principal(request)
    if who is None:
        return error(4, _("sign in first: no valid token or session (anjian login --server URL)"), status=401)
    ident = request.path_params["ident"]
    folder = _folder(state, "downloads")
    path = folder / ident
    meta = _meta(path) if ident.isalnum() else None
    if meta is None or meta["owner"] != who.actor.name or _expired(meta, dt.datetime.now(dt.UTC)) \
            or not path.is_file():
        return error(2, _("no such download: {id} (downloads are kept for an hour, for the official who ran the "
                          "command)").format(id=ident), status=404)
    return FileResponse(path, filename=Path(meta["name"]).name, media_type="application/octet-stream")


@dataclass
class Workspace:
    """The private folder of one request's command: the uploads it reads, put where the command looks for
    them, and the files it writes; `shown` maps each server path to the text the official typed."""

    parent: Path  # the service's requests/ folder; this request's own is made there on first use
    shown: dict[str, str] = field(default_factory=dict)  # server path → the client's text, in messages
    recorded: dict[str, str] = field(default_factory=dict)  # server path (resolved) → the client's absolute path
    outputs: list[tuple[str, Path, str]] = field(default_factory=list)  # (param, server path, client's text)
    made: Path | None = None

    @property
    def folder(self) -> Path:
        """The request's private folder, made when a file first needs it (most commands have none)."""
        if self.made is None:
            self.made = Path(tempfile.mkdtemp(prefix="r", dir=self.parent))
        return self.made

    def close(self) -> None:
        if self.made is not None:
            shutil.rmtree(self.made, ignore_errors=True)

    def show(self, text: str) -> str:
        for server, client in sorted(self.shown.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(server, client)
        return text


def workspace(state) -> Workspace:
    return Workspace(_folder(state, "requests"))


def _upload_of(state, owner: str, value: str, where: str) -> tuple[Path, dict]:
    if not isinstance(value, str) or not value.startswith(PREFIX):
        raise BadInput(_("{param}: with a server, a file is uploaded first and named upload:ID (the anjian client "
                         "does this); the service reads no path on its own machine").format(param=where))
    ident = value[len(PREFIX):]
    path = Path(state.settings.data_dir) / "uploads" / ident
    meta = _meta(path) if ident.isalnum() else None
    if meta is None or meta["owner"] != owner or _expired(meta, dt.datetime.now(dt.UTC)) or not path.is_file():
        raise BadInput(_("{param}: no such upload {id} of yours (uploads are kept for an hour); upload the file "
                         "again").format(param=where, id=ident))
    return path, meta


def _place(ws: Workspace, upload: Path, relative: str) -> Path:
    target = ws.folder / "in" / secrets.token_hex(4) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(upload, target)
    except OSError:
        shutil.copyfile(upload, target)
    return target


def prepare(state, owner: str, path: list[str], params: dict, ws: Workspace, typed: dict, sheet: dict) -> dict:
    """The parameters with every file param pointing into the workspace: uploads placed there under the
    name the official typed, outputs given a path there. `typed` maps upload ids to the client's text,
    `sheet` the evidence paths a `record --file` sheet names to upload ids."""
    from anjian.workflow.cli import remote_files

    out = dict(params)
    for name, value in params.items():
        what = remote_files.kind(path, name)
        if what is None or value is None:
            continue
        where = "--" + name.replace("_", "-")
        if what == "server":
            raise BadInput(_("{param} names a file on the server's machine, which is not given through the API")
                           .format(param=where))
        values = value if isinstance(value, list) else [value]
        done = []
        for v in values:
            if what == "output":
                text = str(v)
                target = ws.folder / "out" / secrets.token_hex(4) / (Path(text).name or "out")
                target.parent.mkdir(parents=True, exist_ok=True)
                ws.outputs.append((name, target, text))
                ws.shown[str(target)] = text
                done.append(str(target))
                continue
            prefix, ref = remote_files.split_paired(str(v)) if (*path, name) in remote_files.PAIRED \
                else ("", v)
            if isinstance(ref, str) and ref.startswith(ABSENT):  # a file the client does not have
                text = ref[len(ABSENT):]
                target = ws.folder / "in" / secrets.token_hex(4) / (Path(text).name or "file")
                ws.shown[str(target)] = text
                ws.recorded[os.path.realpath(target)] = text  # evidence: "no such file", as embedded says
                done.append(prefix + str(target))
                continue
            upload, meta = _upload_of(state, owner, ref, where)
            text = typed.get(meta["id"], meta["name"])
            target = _place(ws, upload, Path(text).name or "file")
            ws.shown[str(target)] = text
            ws.recorded[str(target.resolve())] = meta["name"]
            done.append(prefix + str(target))
            if (*path, name) == ("record", "file"):
                _place_sheet_evidence(state, owner, ws, target, text, sheet)
        out[name] = done if isinstance(value, list) else done[0]
    return out


def _place_sheet_evidence(state, owner: str, ws: Workspace, sheet_path: Path, sheet_text: str, sheet: dict) -> None:
    folder = sheet_path.parent
    for relative, ident in (sheet or {}).items():
        rel = str(relative)
        target = Path(os.path.normpath(folder / rel))
        if Path(rel).is_absolute() or not str(target).startswith(str(folder) + os.sep):
            continue  # not placed: the command then refuses it as a file that was not uploaded
        upload, meta = _upload_of(state, owner, PREFIX + str(ident), "--file " + rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(upload, target)
        except OSError:
            shutil.copyfile(upload, target)
        ws.shown[str(folder / rel)] = str(Path(sheet_text).parent / rel)
        ws.recorded[str(target.resolve())] = meta["name"]


def publish(state, owner: str, ws: Workspace) -> list[dict]:
    """The files the command wrote, moved to downloads/ for `owner`; their descriptions for the answer."""
    if not ws.outputs:
        return []
    files = []
    folder = _folder(state, "downloads")
    now = dt.datetime.now(dt.UTC)
    sweep(folder, now)
    for param, path, text in ws.outputs:
        if not path.is_file():
            continue
        ident = "d" + secrets.token_hex(12)
        data = path.read_bytes()
        shutil.move(str(path), folder / ident)
        meta = {"id": ident, "owner": owner, "name": text, "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data), "created": now.isoformat()}
        (folder / ident).with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        files.append({"param": param, "name": text, "sha256": meta["sha256"], "size": meta["size"],
                      "download": f"/api/v1/downloads/{ident}"})
    return files
