"""Reading and showing time. Services take `now`; only the CLI edge reads the clock or ANJIAN_NOW.

Times are stored in UTC and shown in Asia/Shanghai; a time written without an offset means Shanghai.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from anjian.i18n import _
from anjian.workflow.errors import BadInput

SHANGHAI = ZoneInfo("Asia/Shanghai")
_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_time(text: str, what: str = "time") -> dt.datetime:
    """An aware datetime from ISO 8601 text; a date alone means 00:00 in Shanghai.

    Only ASCII digits are accepted: `int()` would quietly read other scripts' digits.
    """
    raw = text.strip()
    m = _ISO.match(raw) if raw.isascii() else None
    if not m:
        raise BadInput(_("{what} “{text}” is not an ISO 8601 date or time (e.g. 2015-03-31 or 2015-03-31T08:30)")
                       .format(what=what, text=text))
    year, month, day, hour, minute, second, frac, offset = m.groups()
    try:
        naive = dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                            int(second or 0), int((frac or "0").ljust(6, "0")))
    except ValueError:
        raise BadInput(_("{what} “{text}” is not a real date or time: {reason}")
                       .format(what=what, text=text, reason=_impossible(year, month, day, hour, minute, second))) from None
    if offset is None:
        return naive.replace(tzinfo=SHANGHAI)
    if offset == "Z":
        return naive.replace(tzinfo=dt.UTC)
    sign = 1 if offset[0] == "+" else -1
    digits = offset[1:].replace(":", "")
    delta = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    if delta >= dt.timedelta(hours=24) or int(digits[2:]) > 59:
        raise BadInput(_("{what} “{text}” has an impossible offset {offset}").format(what=what, text=text, offset=offset))
    return naive.replace(tzinfo=dt.timezone(sign * delta))


def _impossible(year: str, month: str, day: str, hour: str | None, minute: str | None, second: str | None) -> str:
    """Why these numbers are no date or time, in the official's words (not Python's "day is out of range")."""
    import calendar

    y, m, d = int(year), int(month), int(day)
    if not 1 <= m <= 12:
        return _("there is no month {month}").format(month=m)
    if not 1 <= d <= calendar.monthrange(y, m)[1]:
        return _("{year}-{month:02d} has no day {day}").format(year=y, month=m, day=d)
    if int(hour or 0) > 23:
        return _("there is no hour {hour}").format(hour=int(hour))
    if int(minute or 0) > 59 or int(second or 0) > 59:
        return _("minutes and seconds go up to 59")
    return _("no such moment")


def utc_text(moment: dt.datetime) -> str:
    """The stored form of a moment: ISO 8601 in UTC with a Z, to the microsecond."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_utc_text(text: str) -> dt.datetime:
    """The moment a stored time names. The stored form (utc_text's, 27 characters) is read by
    fromisoformat, forty times faster than strptime (a replay reads thousands); anything else goes
    through strptime, which refuses what is not that form exactly."""
    if len(text) == 27 and text[10] == "T" and text[19] == "." and text[26] == "Z" and text[:4].isdigit():
        return dt.datetime.fromisoformat(text)
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


def local_date(moment: dt.datetime) -> dt.date:
    """The Shanghai calendar day of a moment."""
    return moment.astimezone(SHANGHAI).date()


def shown(moment_text: str) -> str:
    """A stored UTC time as officials read it: Shanghai time to the second."""
    return from_utc_text(moment_text).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
