"""Rendering notices from the Jinja2 templates in `templates/` (files, never strings from the database).

Undefined variables are errors; HTML templates are autoescaped, so a unit name or note carrying markup
or template syntax comes out as text.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import NamedTuple

from anjian.notifications.channels import channel_of, template_files

LANGUAGES = ("zh", "en")
TITLES = {
    ("zh", "reminder"): "关于乡镇安全监管规范化建设节点即将到期的提醒",
    ("zh", "overdue"): "关于乡镇安全监管规范化建设节点逾期的通知",
    ("en", "reminder"): "Reminder: township safety-supervision standardization deadlines",
    ("en", "overdue"): "Notice: township safety-supervision standardization deadlines missed",
    ("zh", "warning"): "关于乡镇安全监管规范化建设节点按期完成风险的预警通知",
    ("en", "warning"): "Early warning: township safety-supervision standardization deadlines at risk",
}


@dataclass(frozen=True)
class NoticeLine:
    """One thing a notice tells: a unit's milestone, its deadline, and days left or late; for an early
    warning (预警) also the forecast at the county's present pace."""

    unit_code: str
    unit_path: str
    milestone: str
    milestone_name: str
    deadline: dt.date
    rung: str
    kind: str  # reminder | overdue | warning
    days: int
    # a warning's forecast: the chance the milestone is met by its deadline, the median completion day
    # (None: not within two years of it) and the townships still to be accepted for it
    probability: float | None = None
    expected: dt.date | None = None
    needed: int = 0


@dataclass(frozen=True)
class Rendered:
    """Every part of one notice, rendered: `r.subject`, `r.text`, ... (the parts the channels declare)."""

    parts: Mapping[str, str]

    def __getattr__(self, part: str) -> str:
        try:
            return self.parts[part]
        except KeyError:
            raise AttributeError(part) from None


@cache
def environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    folder = resources.files("anjian.templates")
    env = Environment(
        loader=FileSystemLoader(str(folder)),
        undefined=StrictUndefined,
        autoescape=lambda name: bool(name) and ".html" in name,
        keep_trailing_newline=True,
        trim_blocks=False,
    )
    # No template uses Jinja2's default globals (range, lipsum, cycler, joiner, namespace, dict). Without
    # them `Template.render` copies no globals into each context: measured on 44,000 notices of three parts
    # each (subject, text, HTML), 6.0 s with them, 4.7-5.0 s without, as fast as the private render path
    # (root_render_func) this replaced.
    env.globals.clear()
    return env


def template_names() -> list[str]:
    """The notice templates (every language and channel); the rest (reports, circulars) have their own contexts."""
    stems = {pattern.split(".")[0] for pattern in template_files().values()}
    return sorted(environment().list_templates(filter_func=lambda n: n.endswith(".j2") and n.split(".")[0] in stems))


def chinese_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


class Item(NamedTuple):
    """One line of a notice as the templates see it (`i.unit_path`, ...). A tuple with attributes, not a
    dict: Jinja2 looks an attribute up first, and on a dict each lookup would raise and catch an
    AttributeError before trying the key (a national pass looks up a million)."""

    unit_path: str
    milestone: str
    milestone_name: str
    deadline: str
    deadline_cn: str
    days: int
    rung: str
    percent: int = 0  # a warning's: the chance it is met, in whole percent
    expected: str = ""  # a warning's median completion day ("" when not within two years)
    expected_cn: str = ""
    needed: int = 0  # a warning's townships still to be accepted


def context(notice_id: str, kind: str, recipient_name: str, recipient_unit: str, lines: list[NoticeLine],
            campaign_title: str, issuer: str, today: dt.date, language: str, drill: bool = False,
            campaign_document: str = "") -> dict:
    """What the templates see. `campaign_document`: the plan's document as the notice cites it, where its
    campaign names one (else the Chinese notice cites the title's 推进方案). `drill`: the notice comes from a drill (演练) database, and says so in
    its subject and its first line, so that no one acts on it."""
    def item(line: NoticeLine) -> Item:
        return Item(line.unit_path, line.milestone, line.milestone_name, line.deadline.isoformat(),
                    chinese_date(line.deadline), line.days, line.rung)

    def warned(line: NoticeLine) -> Item:
        expected = line.expected
        return item(line)._replace(percent=round(100 * (line.probability or 0.0)), needed=line.needed,
                                   expected=expected.isoformat() if expected else "",
                                   expected_cn=chinese_date(expected) if expected else "")

    return {
        "notice_id": notice_id, "kind": kind, "title": TITLES[(language, kind)],
        "recipient_name": recipient_name, "recipient_unit": recipient_unit,
        "overdue": [item(x) for x in lines if x.kind == "overdue"],
        "reminders": [item(x) for x in lines if x.kind == "reminder"],
        "warnings": [warned(x) for x in lines if x.kind == "warning"],
        "campaign_title": campaign_title, "campaign_document": campaign_document, "issuer": issuer,
        "today": today.isoformat(), "today_cn": chinese_date(today), "drill": drill,
    }


PARTS = tuple(template_files())  # every part some channel sends: subject, text, html, markdown


@cache
def template(part: str, language: str):
    """The compiled template of one part in one language, loaded once per process (a pass renders
    thousands of notices; asking the environment each time would stat the file each time)."""
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
    return environment().get_template(template_files()[part].format(language))


def render_parts(ctx: dict, language: str, parts: tuple[str, ...]) -> dict[str, str]:
    """Only the parts a channel sends: e-mail needs subject, text and HTML; a robot the markdown."""
    out = {part: template(part, language).render(ctx) for part in parts}
    if "subject" in out:
        out["subject"] = out["subject"].strip()
    return out


def render(ctx: dict, language: str = "zh") -> Rendered:
    """Subject, plain text, HTML and the group-robot markdown of one notice."""
    return Rendered(render_parts(ctx, language, PARTS))


def content(notice_id: str, kind: str, recipient_name: str, recipient_unit: str, lines: list[NoticeLine],
            campaign_title: str, issuer: str, today: dt.date, language: str, drill: bool = False,
            campaign_document: str = "") -> str:
    """What a notice says, as the JSON of what its parts are rendered from (the arguments of `context`,
    lines in the order given): stored when the notice is claimed, a tenth of the size of its text and
    HTML, and rendered by `parts_of` where it is sent."""
    return json.dumps({"notice_id": notice_id, "kind": kind, "recipient_name": recipient_name,
                       "recipient_unit": recipient_unit, "campaign_title": campaign_title, "issuer": issuer,
                       "today": today.isoformat(), "language": language, **({"drill": True} if drill else {}),
                       **({"campaign_document": campaign_document} if campaign_document else {}),
                       "lines": [_stored_line(x) for x in lines]},
                      ensure_ascii=False, separators=(",", ":"))


def _stored_line(x: NoticeLine) -> list:
    """A line as its notice's content keeps it: eight fields, and a warning's forecast as three more."""
    out = [x.unit_code, x.unit_path, x.milestone, x.milestone_name, x.deadline.isoformat(), x.rung, x.kind, x.days]
    if x.kind == "warning":
        out += [x.probability, x.expected.isoformat() if x.expected else None, x.needed]
    return out


def _line_of(stored: list) -> NoticeLine:
    if len(stored) == 8:
        code, path, ms, name, deadline, rung, kind, days = stored
        return NoticeLine(code, path, ms, name, dt.date.fromisoformat(deadline), rung, kind, days)
    code, path, ms, name, deadline, rung, kind, days, probability, expected, needed = stored
    return NoticeLine(code, path, ms, name, dt.date.fromisoformat(deadline), rung, kind, days, probability,
                      dt.date.fromisoformat(expected) if expected else None, needed)


def parts_of(stored: str, parts: tuple[str, ...]) -> dict[str, str]:
    """Render the parts of a notice from its stored `content`: the same text, byte for byte, as
    `render_parts` of the context it was made from."""
    d = json.loads(stored)
    lines = [_line_of(x) for x in d["lines"]]
    ctx = context(d["notice_id"], d["kind"], d["recipient_name"], d["recipient_unit"], lines, d["campaign_title"],
                  d["issuer"], dt.date.fromisoformat(d["today"]), d["language"], d.get("drill", False),
                  d.get("campaign_document", ""))
    return render_parts(ctx, d["language"], parts)


def body_of(transport: str, stored: str | None, body: str | None = None, html: str | None = None) -> tuple[str, str | None]:
    """The text and HTML a notice is sent with by `transport` (its channel's body part, cut to the
    channel's limit, and its HTML part if it has one): rendered from the notice's stored content, or as
    stored by a pass before schema 0004 (which kept the rendered text and HTML)."""
    if stored is None:
        return body or "", html
    channel = channel_of(transport)
    parts = parts_of(stored, (channel.body,) if channel.html is None else (channel.body, channel.html))
    text = parts[channel.body]
    if channel.limit is not None and channel.fit is not None:
        text = channel.fit(text, channel.limit, json.loads(stored)["language"])
    return text, None if channel.html is None else parts[channel.html]
