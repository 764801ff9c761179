"""Moving the city (the campaign itself) through its stages on the stage dates, as the scheduler does."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from anjian.states.campaign import Campaign
from anjian.states.machines import CLOSED
from anjian.workflow.engine import machine
from anjian.workflow.engine.authz import Acting, Actor
from anjian.workflow.engine.names import UnitRef
from anjian.workflow.services.advance import Advancer, Transition
from anjian.workflow.services.registry import campaign_in_force
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import Unit

SCHEDULER = "scheduler"  # the name the scheduler's audit rows carry
SCHEDULER_ACTOR = Actor.system(SCHEDULER)


def tick_city(db: Database, now: dt.datetime, actor: Acting = SCHEDULER_ACTOR) -> list[Transition]:
    """Fire every city stage trigger whose date has come (several after a long outage), audited."""
    with db.write() as session:
        campaign = campaign_in_force(session)
        if not campaign.city:
            return []
        city = session.get(Unit, campaign.city)
        if city is None or city.level != "city":
            return []
        adv = Advancer(session, now, actor)
        ref = UnitRef(city.code, city.name, city.level, city.parent_code, city.state, city.version)
        while True:
            state = adv.loader.overlay.get(city.code, city.state)
            nxt = next((t["trigger"] for t in campaign.machines["city"].transitions if t["source"] == state), None)
            if nxt is None or not machine.check(adv.loader.facts(city.code), nxt).allowed:
                break
            adv.prepare(ref, nxt, None, [])
        return adv.commit() if adv.pending else []


def stage_on(campaign: Campaign, today: dt.date) -> str:
    """The city's stage as the campaign's dates make it on `today` — what the scheduler will have stored
    once it has run, so that no view shows a stage the daemon has not caught up with yet."""
    stages = campaign.stages
    if not stages:
        return campaign.machines["city"].initial
    if today > stages[-1].ends:
        return CLOSED
    current = stages[0].id  # before the first stage starts, the city is in its first (mobilizing) stage
    for stage in stages:
        if today >= stage.starts:
            current = stage.id
    return current


def parse_milestone(campaign: Campaign, text: str) -> str | None:
    """The id of the milestone `text` names: its id (`-` for `_`), its name in the campaign, or its short
    name in Chinese or English (方案报送, plan submitted); None when none fits."""
    from anjian.states.labels import MILESTONE_SHORT, _fold, spellings

    wanted = _fold(text or "")
    if not wanted:
        return None
    for m in campaign.milestones:
        if wanted in {_fold(m.id), _fold(m.name)} | (spellings(MILESTONE_SHORT, m.id) if m.id in MILESTONE_SHORT else set()):
            return m.id
    return None


def city_state(db: Database) -> str | None:
    with db.read() as session:
        campaign = campaign_in_force(session)
        return session.scalar(select(Unit.state).where(Unit.code == campaign.city))
