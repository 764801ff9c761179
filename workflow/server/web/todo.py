"""`/`: the signed-in official's page (我的待办)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from anjian.i18n import _
from anjian.workflow.server.web import base


def routes() -> list[Route]:
    return [Route("/", home, methods=["GET"])]


async def home(request: Request) -> Response:
    who, away = await base.signed_in(request)
    if who is None:
        return away
    return base.render(request, who, "home", title=_("My tasks"))
