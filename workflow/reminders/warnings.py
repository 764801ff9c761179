"""The early warnings (预警) a pass sends: every county milestone its forecast warns of, once a week.

The forecast is the one `status` shows (`outlook/forecast.py`), worked out once per pass for every county
from one Snapshot, set-based. A warning's rung is the ISO week it goes out in (`w-2015-W12`), so the
notice items' key (recipient, unit, milestone, rung) lets it reach each recipient once a week while the
county stays warned, through the same claim as every reminder. Only milestones still coming are
forecast: one met is not, and one overdue gets its overdue notices instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy.orm import Session

from anjian.notifications.render import NoticeLine
from anjian.workflow.clock import local_date
from anjian.workflow.reminders.due import Due
from anjian.workflow.reminders.workdays import WorkCalendar
from anjian.workflow.settings import ForecastSettings

WEEKLY = "w-"  # the prefix of a warning's rung; the ladder's are d-N and o+N


def week_rung(day: dt.date) -> str:
    """The rung of a warning sent on `day`: its ISO week, `w-2015-W12`."""
    year, week, _ = day.isocalendar()
    return f"{WEEKLY}{year}-W{week:02d}"


def is_weekly(rung: str) -> bool:
    """Whether a stored rung is a warning's (not on the reminder ladder)."""
    return rung.startswith(WEEKLY)


def warnings(session: Session, now: dt.datetime, campaign, cal: WorkCalendar, settings: ForecastSettings,
             counties_now: Mapping[str, list] | None = None) -> list[Due]:
    """A line for each county milestone warned of at `now` (none when `settings.notify` is off), each with
    its forecast: the chance it is met, the median completion day, the townships still needed.
    `counties_now`: the counties' milestone statuses at `now`, when the caller has them (`due`)."""
    today = local_date(now)
    if not settings.notify or not any(0 <= (m.deadline - today).days <= settings.horizon_days for m in campaign.milestones):
        return []  # nothing could be warned of: no forecast (most days of a campaign)
    # imported here: the forecast brings numpy, which a pass with nothing to forecast need not load
    from anjian.workflow.outlook.forecast import forecasts
    from anjian.workflow.outlook.snapshot import Snapshot

    snap = Snapshot(session, campaign, now).knowing(counties_now or {})
    # only the counties with a milestone still to meet within the horizon can be warned (each county's
    # chance is drawn on its own, whichever others are forecast beside it: `pace.Draws`)
    counties = sorted(u.code for u in snap.upper.values() if u.level == "county" and any(
        m.status == "pending" and m.days <= settings.horizon_days for m in snap.county(u.code)))
    ahead = forecasts(snap, counties, settings, is_workday=cal.is_workday)
    rung = week_rung(today)
    names = {m.id: m.name for m in campaign.milestones}
    out: list[Due] = []
    for code in sorted(ahead):
        for f in ahead[code]:
            if not f.warning:
                continue
            line = NoticeLine(code, snap.tree.path(code), f.milestone, names[f.milestone], f.deadline, rung, "warning",
                              (f.deadline - today).days, f.probability, f.expected, f.needed)
            out.append(Due(line, "county", snap.upper[code].parent))
    return out
