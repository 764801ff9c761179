"""Rendering notices from the Jinja2 templates in `templates/` (files, never strings from the database).

Undefined variables are errors; HTML templates are autoescaped, so a unit name or note carrying markup
or template syntax comes out as text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from importlib import resources

LANGUAGES = ("zh", "en")
TITLES = {
    ("zh", "reminder"): "关于乡镇安全监管规范化建设节点即将到期的提醒",
    ("zh", "overdue"): "关于乡镇安全监管规范化建设节点逾期的通知",
    ("en", "reminder"): "Reminder: township safety-supervision standardization deadlines",
    ("en", "overdue"): "Notice: township safety-supervision standardization deadlines missed",
}


@dataclass(frozen=True)
class NoticeLine:
    """One thing a notice tells: a unit's milestone, its deadline, and days left or late."""

    unit_code: str
    unit_path: str
    milestone: str
    milestone_name: str
    deadline: dt.date
    rung: str
    kind: str  # reminder | overdue
    days: int


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    markdown: str


@cache
def environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    folder = resources.files("anjian.templates")
    return Environment(
        loader=FileSystemLoader(str(folder)),
        undefined=StrictUndefined,
        autoescape=lambda name: bool(name) and ".html" in name,
        keep_trailing_newline=True,
        trim_blocks=False,
    )


def template_names() -> list[str]:
    return sorted(environment().list_templates(filter_func=lambda n: n.endswith(".j2")))


def chinese_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def context(notice_id: str, kind: str, recipient_name: str, recipient_unit: str, lines: list[NoticeLine],
            campaign_title: str, issuer: str, today: dt.date, language: str) -> dict:
    def item(line: NoticeLine) -> dict:
        return {"unit_path": line.unit_path, "milestone": line.milestone, "milestone_name": line.milestone_name,
                "deadline": line.deadline.isoformat(), "deadline_cn": chinese_date(line.deadline), "days": line.days,
                "rung": line.rung}

    return {
        "notice_id": notice_id, "kind": kind, "title": TITLES[(language, kind)],
        "recipient_name": recipient_name, "recipient_unit": recipient_unit,
        "overdue": [item(x) for x in lines if x.kind == "overdue"],
        "reminders": [item(x) for x in lines if x.kind == "reminder"],
        "campaign_title": campaign_title, "issuer": issuer,
        "today": today.isoformat(), "today_cn": chinese_date(today),
    }


def render(ctx: dict, language: str = "zh") -> Rendered:
    """Subject, plain text, HTML and the group-robot markdown of one notice."""
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
    env = environment()
    return Rendered(
        subject=env.get_template(f"subject.{language}.txt.j2").render(ctx).strip(),
        text=env.get_template(f"notice.{language}.txt.j2").render(ctx),
        html=env.get_template(f"notice.{language}.html.j2").render(ctx),
        markdown=env.get_template(f"webhook.{language}.md.j2").render(ctx),
    )
