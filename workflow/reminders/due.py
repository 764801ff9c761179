"""What is due today: the campaign's reminder ladder against each unit's milestones not met."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from anjian.notifications.render import NoticeLine
from anjian.states.milestones import milestones
from anjian.workflow.clock import local_date
from anjian.workflow.engine.facts import FactsLoader
from anjian.workflow.engine.tree import UnitTree
from anjian.workflow.reminders.ladder import Ladder, latest_due
from anjian.workflow.reminders.workdays import WorkCalendar
from anjian.workflow.services.registry import campaign_in_force
from anjian.workflow.store.models import Unit


@dataclass(frozen=True)
class Due:
    """One line a notice will carry, with where its unit sits (to find who supervises it)."""

    line: NoticeLine
    level: str
    parent_code: str | None


def ladder_of(campaign) -> Ladder:
    """The campaign's reminder ladder (its `[reminders]` table)."""
    return Ladder(tuple(campaign.reminders.before), campaign.reminders.overdue_every)


def due(session: Session, now: dt.datetime, cal: WorkCalendar) -> tuple[list[Due], UnitTree, dict[str, list]]:
    """Every (unit, milestone) not met with the rung to send today, for townships and counties; the
    units' paths (for the recipients' names); and each county's milestone statuses (for its forecast)."""
    campaign = campaign_in_force(session)
    ladder = ladder_of(campaign)
    today = local_date(now)
    loader = FactsLoader(session, campaign, now, plain=True)
    # Every county with its townships and their facts, then the townships without a county, each in a
    # few set-based queries (FactsLoader.prefetch): none per unit.
    counties = list(session.scalars(select(Unit.code).where(Unit.level == "county")))
    loader.prefetch(counties)
    orphans = list(session.scalars(select(Unit.code).where(Unit.level == "township")))
    loader.prefetch(c for c in orphans if c not in loader.units)
    paths = UnitTree.upper(session)
    paths.add(loader.units.values())
    out: list[Due] = []
    counties_now: dict[str, list] = {}
    names = {m.id: m.name for m in campaign.milestones}
    deadlines = {m.id: m.deadline for m in campaign.milestones}
    # The rung depends on the deadline and today only; each one walks the calendar week by week since
    # the deadline, so it is worked out once per milestone, not once per unit.
    rungs = {mid: latest_due(day, today, ladder, cal) for mid, day in deadlines.items()}
    # Where every township rule of the campaign is met by states alone (chengde-2014's are), a township's
    # milestones follow from its state and cohorts: worked out once per such pair, not 40,000 times.
    by_state = all(r.states and not r.when_has for m in campaign.milestones for r in m.rules if r.level == "township")
    seen: dict[tuple[str | None, frozenset[str]], list] = {}
    for code, u in sorted(loader.units.items()):
        if u.level not in ("county", "township"):
            continue
        if by_state and u.level == "township":
            key = (loader.state(code), frozenset(loader.cohorts.get(code, ())))
            if key not in seen:
                seen[key] = milestones(loader.facts(code), campaign, today)
            statuses = seen[key]
        else:
            statuses = milestones(loader.facts(code), campaign, today)
            if u.level == "county":
                counties_now[code] = statuses
        for m in statuses:
            if m.status == "met":
                continue
            rung = rungs[m.id]
            if rung is None:
                continue
            line = NoticeLine(code, paths.path(code), m.id, names[m.id], deadlines[m.id], rung.name, rung.kind, m.days)
            out.append(Due(line, u.level, u.parent_code))
    return out, paths, counties_now
