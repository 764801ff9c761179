"""`/history` (审计记录): the audit log for review — filtered by unit, official, action and time, newest
first, a page at a time; each row with its evidence files (name and SHA-256) and its hash in the chain;
what `audit verify` says of the whole log; and the latest signed checkpoint with the public key, to
download and verify offline (`anjian audit verify --checkpoint FILE --public-key FILE`).

Every row comes from `history` run as the signed-in official (what they may see is the command's to
say), the verdict from `audit verify`, the checkpoint's place from the log's own `checkpoint` row; a
new checkpoint is written by `audit checkpoint` (whoever its permission allows)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from anjian.i18n import _
from anjian.workflow.server.web import base
from anjian.workflow.server.web.dashboard import download

PER_PAGE = 100
FILTERS = ("unit", "actor", "action", "since", "until")


def routes() -> list[Route]:
    return [
        Route("/history", page, methods=["GET"]),
        Route("/history/checkpoint", checkpoint, methods=["POST"]),
        Route("/history/checkpoint.json", checkpoint_file, methods=["GET"]),
        Route("/history/public-key.pem", public_key, methods=["GET"]),
    ]


# -- the page ---------------------------------------------------------------------------------------
def _filters(request: Request) -> dict:
    """The filter form's values as given ("" when blank), `children` as a flag."""
    q = request.query_params
    return {**{k: q.get(k, "").strip()[:200] for k in FILTERS}, "children": bool(q.get("children"))}


def _page_number(request: Request) -> int:
    text = request.query_params.get("page", "1")
    return max(int(text), 1) if text.isdigit() and len(text) < 7 else 1


async def page(request: Request) -> Response:
    who, away = await base.signed_in(request)
    if who is None:
        return away
    return await _show(request, who)


async def _show(request: Request, who, status: int = 200, error: str | None = None,
                error_details: list[str] | None = None) -> Response:
    filters = _filters(request)
    number = _page_number(request)
    params = {k: v for k, v in filters.items() if v and k != "action"}
    if filters["action"]:
        params["action"] = [filters["action"]]
    rows = await base.run(request, who, ["history"], {**params, "newest_first": True, "rows": PER_PAGE + 1,
                                                       "skip": (number - 1) * PER_PAGE})
    if not rows.ok and error is None:
        status, error, error_details = rows.status, rows.message, rows.details
    found = rows.data if rows.ok and isinstance(rows.data, list) else []
    verdict = await base.run(request, who, ["audit", "verify"])
    latest = await _latest_checkpoint(request, who)
    key = _public_key_path(request)
    link = {k: ("1" if v is True else v) for k, v in filters.items() if v}
    done = {"checkpoint": _("A signed checkpoint was written.")}.get(request.query_params.get("done", ""))
    return base.render(
        request, who, "history", status, title=_("Audit"), error=error, error_details=error_details or [],
        notice=done, filters=filters, actions=_actions(), rows=[_row(r) for r in found[:PER_PAGE]],
        page=number, newer=_url(link, number - 1) if number > 1 else None,
        older=_url(link, number + 1) if len(found) > PER_PAGE else None,
        verdict=_verdict(verdict), checkpoint=latest, public_key=key.name if key else None,
        may_checkpoint=_may_checkpoint(who), csrf=who.csrf)


def _url(filters: dict, number: int) -> str:
    return "/history?" + urlencode({**filters, "page": number})


def _row(r: dict) -> dict:
    from anjian.workflow.clock import shown

    return {**r, "time": shown(r["at"]), "recorded": shown(r["recorded_at"]) if r.get("recorded_at") else "",
            "files": [{"name": Path(str(e.get("path", ""))).name or e.get("path", ""), "path": e.get("path", ""),
                       "sha256": e.get("sha256", "")} for e in r.get("evidence") or []]}


def _actions() -> list[tuple[str, str]]:
    """Every action the filter offers: the triggers first, then the log's own actions, by name."""
    from anjian.states.labels import TRIGGER_NAMES
    from anjian.workflow.cli.auditing import ACTIONS

    return [(k, TRIGGER_NAMES[k]) for k in TRIGGER_NAMES] + [(k, _(v)) for k, v in ACTIONS.items()]


def _verdict(answer: base.Answer) -> dict:
    """What `audit verify` said: intact (its lines), or broken (exit 6: the first bad row and why)."""
    if answer.ok:
        lines = [line for line in answer.stdout.splitlines() if line.strip()]
        return {"ok": True, "message": lines[0] if lines else "", "notes": lines[1:], "exit": 0}
    return {"ok": False, "message": answer.message, "notes": answer.details, "exit": answer.exit}


def _may_checkpoint(who) -> bool:
    """Whether to offer the button (the command decides; the button is not shown to whom it refuses)."""
    from anjian.states.permissions import ACTIONS

    return who.actor.role in ACTIONS.get("checkpoint", frozenset())


# -- the signed checkpoint --------------------------------------------------------------------------
async def _latest_checkpoint(request: Request, who) -> dict | None:
    """The log's latest `checkpoint` row: its number, time, official, head, and whether the file it
    names is here to download."""
    from anjian.workflow.clock import shown

    answer = await base.run(request, who, ["history"], {"action": ["checkpoint"], "newest_first": True, "rows": 1})
    if not answer.ok or not answer.data:
        return None
    row = answer.data[0]
    detail = row.get("detail") or {}
    path = _checkpoint_path(detail)
    return {"seq": detail.get("seq"), "head_hash": detail.get("head_hash", ""), "row": row["seq"],
            "time": shown(row["at"]), "actor": row.get("shown_actor") or row["actor"],
            "name": f"checkpoint-{detail.get('seq')}.json", "here": path is not None}


def _checkpoint_path(detail: dict) -> Path | None:
    """The checkpoint file a `checkpoint` row names, when it is here and is that checkpoint."""
    try:
        path = Path(str(detail.get("file") or ""))
        if not detail.get("file") or not path.is_file():
            return None
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    fits = isinstance(content, dict) and content.get("anjian_checkpoint") and content.get("seq") == detail.get("seq") \
        and content.get("head_hash") == detail.get("head_hash")
    return path if fits else None


def _public_key_path(request: Request) -> Path | None:
    """The public key `audit verify` checks checkpoints with (the service's settings), when it is here."""
    try:
        path = Path(base.state(request).settings.audit_public_key)
        head = path.read_bytes()[:64] if path.is_file() else b""
    except OSError:
        return None
    return path if head.startswith(b"-----BEGIN PUBLIC KEY-----") else None


async def checkpoint_file(request: Request) -> Response:
    """The latest signed checkpoint, to keep apart from the database and verify against it later."""
    who, away = await base.signed_in(request)
    if who is None:
        return away
    latest = await base.run(request, who, ["history"], {"action": ["checkpoint"], "newest_first": True, "rows": 1})
    if not latest.ok:
        return base.refused_page(request, who, latest.status, latest.message)
    detail = (latest.data[0].get("detail") or {}) if latest.data else {}
    path = _checkpoint_path(detail)
    if path is None:
        return base.refused_page(request, who, 404, _(
            "no signed checkpoint is kept on the server: the city office writes one (anjian audit checkpoint)"))
    name = f"checkpoint-{detail.get('seq')}.json"
    return download(path.read_bytes(), "application/json", name, name)


async def public_key(request: Request) -> Response:
    """The public key that verifies the checkpoints (it cannot sign: giving it away is safe)."""
    who, away = await base.signed_in(request)
    if who is None:
        return away
    path = _public_key_path(request)
    if path is None:
        return base.refused_page(request, who, 404, _(
            "the service has no audit public key yet: it is written with the first checkpoint"))
    return download(path.read_bytes(), "application/x-pem-file", path.name, path.name)


async def checkpoint(request: Request) -> Response:
    """POST: write a signed checkpoint now (`audit checkpoint`, into the service's data folder)."""
    who, away = await base.signed_in(request)
    if who is None:
        return away
    if await base.form(request, who) is None:
        return base.expired_form(request, who)
    answer = await base.run(request, who, ["audit", "checkpoint"])
    if not answer.ok:
        return await _show(request, who, answer.status, answer.message, answer.details)
    return base.redirect("/history?done=checkpoint")
