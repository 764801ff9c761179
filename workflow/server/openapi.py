"""`GET /api/v1/openapi.json`: the API described as OpenAPI 3.1, made from the click tree itself, so that
every command the service runs is in it with the parameters click checks (types, choices as enums, the
help texts as descriptions), beside the routes of sign-in, files and health."""

from __future__ import annotations

import click
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from anjian.workflow.cli.remote_files import api_name

ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["exit", "message", "details"], "properties": {
        "exit": {"type": "integer", "description": "The contract's exit code: 2 bad input, 3 refused, "
                                                    "4 not permitted, 5 conflict, 6 audit broken"},
        "message": {"type": "string"}, "details": {"type": "array", "items": {"type": "string"}},
        "must_change": {"type": "boolean"}}}}}
CLI_ANSWER = {"type": "object", "properties": {
    "exit": {"type": "integer"}, "stdout": {"type": "string"}, "stderr": {"type": "string"},
    "files": {"type": "array", "items": {"type": "object", "properties": {
        "param": {"type": "string"}, "name": {"type": "string"}, "sha256": {"type": "string"},
        "size": {"type": "integer"}, "download": {"type": "string"}}}}}}


def commands() -> list[tuple[list[str], click.Command]]:
    """Every command the service runs, with its path (`["contact", "add"]`), in `--help` order."""
    from anjian.workflow.cli import cli
    from anjian.workflow.cli.remote import LOCAL_ONLY

    found: list[tuple[list[str], click.Command]] = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        if " ".join(path) in LOCAL_ONLY:
            return
        if isinstance(cmd, click.Group):
            if cmd.invoke_without_command and path:
                found.append((path, cmd))
            ctx = click.Context(cmd, info_name=path[-1] if path else "anjian")
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None:
                    walk(sub, [*path, name])
            return
        found.append((path, cmd))

    walk(cli, [])
    return found


def _schema(p: click.Parameter) -> dict:
    t = p.type
    if isinstance(t, click.Choice):
        one: dict = {"type": "string", "enum": list(t.choices)}
    elif isinstance(t, click.types.IntParamType):
        one = {"type": "integer"}
    elif isinstance(t, click.types.FloatParamType):
        one = {"type": "number"}
    elif isinstance(t, click.types.BoolParamType) or (isinstance(p, click.Option) and p.is_flag):
        one = {"type": "boolean"}
    else:
        one = {"type": "string"}
    many = getattr(p, "multiple", False) or (p.nargs != 1 and not (isinstance(p, click.Option) and p.is_flag))
    schema = {"type": "array", "items": one} if many else one
    help_text = getattr(p, "help", None)
    if help_text:
        schema["description"] = help_text
    elif isinstance(p, click.Argument):
        schema["description"] = (p.metavar or p.name or "").strip()
    return schema


def _operation(path: list[str], cmd: click.Command, method: str) -> dict:
    from anjian.workflow.server.runner import api_params

    props, required = {}, []
    for p in api_params(cmd):
        name = api_name(p)
        props[name] = _schema(p)
        if p.required:
            required.append(name)
    body = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        body["required"] = required
    help_text = (cmd.help or "").strip()
    op = {
        "operationId": method + "_" + "_".join(path).replace("-", "_"),
        "summary": help_text.splitlines()[0] if help_text else " ".join(path),
        "description": help_text,
        "tags": [path[0]],
        "responses": {
            "200": {"description": "The command's `--format json` body, or {output, messages} for a command "
                                   "without JSON; with Accept application/vnd.anjian.cli+json, what the CLI prints",
                    "content": {"application/json": {"schema": {}},
                                "application/vnd.anjian.cli+json": {"schema": CLI_ANSWER}}},
            "default": {"description": "Refused: the contract's exit code beside the HTTP status",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
    }
    if method == "get":
        op["parameters"] = [{"name": n, "in": "query", "required": n in required, "schema": s}
                            for n, s in props.items()]
    else:
        op["requestBody"] = {"content": {"application/json": {"schema": body}}}
    return op


def _command_paths() -> dict:
    """A path per command: GET and POST for a read, POST only for a write."""
    from anjian.workflow.server.runner import reads_only

    paths = {}
    for path, cmd in commands():
        methods = ("get", "post") if reads_only(path) else ("post",)
        paths["/api/v1/" + "/".join(path)] = {m: _operation(path, cmd, m) for m in methods}
    return paths


def _fixed_paths() -> dict:
    """The routes that are not commands: files, sign-in, health."""
    paths: dict = {}
    error_only = {"default": {"description": "Refused", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}}}
    paths["/api/v1/uploads"] = {"post": {
        "operationId": "upload", "summary": "Upload a file a command then names as upload:ID",
        "parameters": [{"name": "X-Anjian-Filename", "in": "header", "schema": {"type": "string"},
                        "description": "The file's name, percent-encoded UTF-8"},
                       {"name": "X-Anjian-SHA256", "in": "header", "schema": {"type": "string"}}],
        "requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string",
                                                                            "format": "binary"}}}},
        "responses": {"201": {"description": "Kept for an hour, for this official", "content": {
            "application/json": {"schema": {"type": "object", "properties": {
                "id": {"type": "string"}, "sha256": {"type": "string"}, "size": {"type": "integer"},
                "name": {"type": "string"}}}}}}, **error_only}}}
    paths["/api/v1/downloads/{id}"] = {"get": {
        "operationId": "download", "summary": "A file a command wrote, for the official who ran it",
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "The file", "content": {"application/octet-stream": {
            "schema": {"type": "string", "format": "binary"}}}}, **error_only}}}
    paths["/api/v1/signin"] = {"post": {
        "operationId": "signin", "summary": "Sign in with a password; answers a token", "security": [],
        "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": [
            "username", "password"], "properties": {"username": {"type": "string"}, "password": {"type": "string"},
                                                     "new_password": {"type": "string"},
                                                     "label": {"type": "string"}}}}}},
        "responses": {"200": {"description": "{token, id, official, expires_at}"}, **error_only}}}
    paths["/api/v1/signout"] = {"post": {"operationId": "signout", "summary": "Revoke the calling token",
                                         "responses": {"200": {"description": "Signed out"}, **error_only}}}
    paths["/api/v1/me"] = {"get": {"operationId": "me", "summary": "Who the credential is",
                                   "responses": {"200": {"description": "{name, role, unit, credential, kind, "
                                                                        "must_change}"}, **error_only}}}
    paths["/healthz"] = {"get": {"operationId": "healthz", "summary": "200 when ready", "security": [],
                                 "responses": {"200": {"description": "Ready"}, "503": {"description": "Not ready"}}}}
    return paths


def document() -> dict:
    """The OpenAPI 3.1 document of this anjian."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        own = version("anjian")
    except PackageNotFoundError:
        own = "0"
    paths = {**_command_paths(), **_fixed_paths()}
    return {
        "openapi": "3.1.0",
        "info": {"title": "anjian", "version": own,
                 "description": "Every anjian command over HTTP. Headers: Accept-Language zh|en, X-Anjian-Columns N; "
                                "lists take limit (default 100, at most 1000) and offset and answer X-Total-Count "
                                "and Link; `show` answers an ETag that advance, record and designate take as "
                                "If-Match."},
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "anj_… (anjian login, anjian token create)"},
                                "cookie": {"type": "apiKey", "in": "cookie", "name": "anjian_session"}}},
        "security": [{"bearer": []}, {"cookie": []}],
    }


_CACHE: dict = {}


async def route(request: Request) -> Response:
    """The document in the language asked (Accept-Language: help texts are translated), made once each."""
    from starlette.concurrency import run_in_threadpool

    from anjian.i18n import language

    lang = "en" if request.headers.get("accept-language", "").lower().startswith("en") else "zh"

    def made() -> dict:
        with language(lang):
            return document()

    if lang not in _CACHE:
        _CACHE[lang] = await run_in_threadpool(made)
    return JSONResponse(_CACHE[lang])
