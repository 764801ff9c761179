"""Several campaigns in one database: add one beside the first, list them.

The registry is the database's; a campaign covers the units of its city (`[campaign] city`), their
ancestors up to the registry's root, and nothing else. Adding one gives each of those units its initial
state in the new campaign, writes the campaign's file in `campaigns` and one `campaign_add` audit row;
from then on every command names the campaign it works on (`--campaign ID`) and sees only its states,
checklist values, cohorts and notices. The first campaign is the one `init` loaded.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from anjian.i18n import _
from anjian.workflow.clock import utc_text
from anjian.workflow.engine.authz import Acting, acting, may, name_of, refusals_audited
from anjian.workflow.errors import BadInput, NotInitialized
from anjian.workflow.services.registry import campaign_source, meta, parse_campaign, subtree
from anjian.workflow.store import audit, scope
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import CampaignRow, UnitState, units_table


@dataclass(frozen=True)
class CampaignInfo:
    no: int
    id: str
    title: str
    city: str
    units: int
    sha256: str
    added_at: str | None
    added_by: str | None


@dataclass(frozen=True)
class Added:
    campaign: CampaignInfo
    changed: bool
    message: str


def covered(session: Session, city: str) -> list[tuple[str, str]]:
    """(code, level) of the units a campaign of `city` covers (`registry.subtree`)."""
    units = units_table.c
    rows = session.execute(select(units.code, units.level, units.parent_code)).all()
    if not any(code == city for code, _l, _p in rows):
        raise BadInput(_("the campaign's city {city} is not in this database's registry").format(city=city))
    level = {code: lv for code, lv, _p in rows}
    return [(c, level[c]) for c in subtree([(code, p) for code, _l, p in rows], city)]


def add(db: Database, spec: str, actor: Acting | str, now: dt.datetime) -> Added:
    """Add the campaign `spec` (a built-in id or a TOML file) beside those the database runs. Running it
    again with the same file changes nothing; another file under an id already there is refused."""
    actor = acting(actor)
    source = campaign_source(spec)
    new = parse_campaign(source)
    with refusals_audited(db, actor, now, "campaign"), scope.chosen(None), db.write() as session:
        may(session, actor, "campaign")
        if meta(session, "campaign") is None:
            raise NotInitialized(_("this database has no campaign yet: run `anjian init` first"))
        known = dict((cid, no) for no, cid in scope.campaigns(session))
        if new.id in known:
            same = (meta(session, "campaign_sha256") if known[new.id] == scope.FIRST
                    else session.get(CampaignRow, known[new.id]).sha256) == new.sha256
            if not same:
                raise BadInput(_("campaign {id} already runs in this database from another file: give the new "
                                 "campaign an id of its own").format(id=new.id))
            return Added(_info(session, known[new.id]), False,
                         _("Campaign {id} already runs here, unchanged").format(id=new.id))
        units = covered(session, new.city)
        no = max(known.values()) + 1
        stamp, by = utc_text(audit.stamp(session, now)), name_of(actor)
        session.connection().execute(insert(UnitState.__table__), [
            {"campaign_no": no, "unit_code": code, "state": new.machines[level].initial if level in new.machines else None,
             "version": 1, "changed_at": stamp, "changed_by": by} for code, level in units])
        session.add(CampaignRow(no=no, id=new.id, title=new.title, text=source.text, sha256=new.sha256,
                                added_at=stamp, added_by=by))
        audit.append(session, [audit.Entry(now, actor, "campaign_add", detail={
            "campaign": new.id, "no": no, "title": new.title, "source": source.name, "sha256": new.sha256,
            "city": new.city, "units": len(units)})])
        session.flush()
        return Added(_info(session, no), True, _("Campaign {id} added ({title}): {count} unit(s) of {city}").format(
            id=new.id, title=new.title, count=len(units), city=new.city))


def listing(db: Database) -> list[CampaignInfo]:
    """Every campaign of the database, the first one first."""
    with scope.chosen(None), db.read() as session:
        return [_info(session, no) for no, _id in scope.campaigns(session)]


def _info(session: Session, no: int) -> CampaignInfo:
    from anjian.workflow.services.registry import _campaign_from_text

    count = session.scalar(select(func.count()).select_from(UnitState.__table__)
                           .where(UnitState.__table__.c.campaign_no == no))
    if no == scope.FIRST:
        c = _campaign_from_text(meta(session, "campaign"))
        return CampaignInfo(no, c.id, c.title, c.city, count, c.sha256, None, None)
    row = session.get(CampaignRow, no)
    c = _campaign_from_text(row.text)
    return CampaignInfo(no, row.id, row.title, c.city, count, row.sha256, row.added_at, row.added_by)
