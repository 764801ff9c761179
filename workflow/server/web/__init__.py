"""The web for officials: server-rendered pages in Chinese over the same commands as the CLI and the API.

    /                 我的待办: my units, their next deadlines, what is missing, what waits for my decision (todo)
    /units/CODE       a township's checklist form and triggers, a county's or the city's page (unit)
    /queue            an inspector's queue of applied townships (queue)
    /dashboard        the city's dashboard: progress figures, charts, overdue, milestones, exports (dashboard)
    /history          audit review: filterable history, verify, the signed checkpoint (audit)
    /officials        officials and contacts, for admins and the city office (people)

Each module's `routes()` is gathered here; the pages share web/base (sign-in, running a command, forms)."""

from __future__ import annotations

from starlette.routing import Route


def routes() -> list[Route]:
    from anjian.workflow.server.web import audit, dashboard, people, queue, todo, unit

    return [*todo.routes(), *unit.routes(), *queue.routes(), *dashboard.routes(), *audit.routes(),
            *people.routes()]
