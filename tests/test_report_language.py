"""The report documents speak the catalog's language: the progress report (HTML, CSV, workbook), the circular
and the dossier are Chinese by default and, with ANJIAN_LANG=en, carry no Chinese but their data (unit names,
people, the campaign's own names and labels, recorded values); the catalog is read from their templates too."""

from __future__ import annotations

import io
import json
import re

import openpyxl
import pytest
from sqlalchemy import select
from test_assessment import DAGE, KUANCHENG, LATER, NOW, YUERYA, at, drive
from test_language import _CJK, CAMPAIGN, GLOSSES, _strings, en_findings

from anjian.i18n import language
from anjian.workflow import translations
from anjian.workflow.reports import assessment, dossier, progress
from anjian.workflow.store.models import AuditRow, Unit

MILESTONES = ("plan_submission", "provincial_demo", "county_demo", "key_compliance", "full_coverage")
DATES = (NOW, LATER, "2015-03-20T10:00")  # after the demonstration deadline, past most deadlines, before one


@pytest.fixture
def run(chengde, tmp_path):
    return drive(chengde, tmp_path)


@pytest.fixture
def data(run) -> list[str]:
    """The Chinese that is data: unit names and their parts, the campaign's text, what the log recorded
    (values, notes, people)."""
    import tomllib

    words = set(GLOSSES) | {s for s in _strings(tomllib.loads(CAMPAIGN.read_text(encoding="utf-8"))) if _CJK.search(s)}
    with run.db.read() as session:
        words |= set(session.scalars(select(Unit.name)))
        words |= {"".join(p) for p in session.execute(select(Unit.name, Unit.code))}
        for detail, actor, note in session.execute(select(AuditRow.detail, AuditRow.actor, AuditRow.note)):
            words |= {s for s in _strings(json.loads(detail) if isinstance(detail, str) else detail or {}) if _CJK.search(s)}
            words |= {actor, note or ""}
    with run.db.read() as session:
        from anjian.workflow.services.registry import campaign_in_force

        issuer = campaign_in_force(session).issuer
    words |= {issuer, issuer[:1]}  # the circular's number line abbreviates the issuer: 承安委办〔2016〕号
    for name in list(words):
        words |= {part for part in re.split(r"[（）()、，。：；\s]+", name) if part}
    return sorted((w for w in words if w), key=len, reverse=True)


def english(render) -> str:
    with language("en"):
        return render()


def test_progress_report_html_in_english_has_no_chinese_but_data(run, data):
    """The progress report's page in English: every fixed word (headings, table heads, cards, captions, chart
    titles, legends, footers) comes from the catalog; Chinese is left only in names and the campaign's text."""
    for now in DATES:
        page = english(lambda now=now: progress.html(progress.build(run.db, at(now))))
        assert '<html lang="en">' in page
        assert en_findings(page, data) == [], now


def test_progress_report_html_in_chinese_by_default(run):
    """Without a language asked for, the page is the Chinese document it always was."""
    page = progress.html(progress.build(run.db, at(NOW)))
    assert '<html lang="zh-CN">' in page
    for words in ("阶段与时间节点", "逾期单位（", "各县区乡镇进度：已达标、创建中、未开展", "合计", "（北京时间）· anjian"):
        assert words in page
    assert "Overdue units" not in page and "progress report" not in page


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_circular_in_english_has_no_chinese_but_data(run, data, fmt):
    """The circular on each milestone, as of each date, in English: its sections, counts and deductions in
    words of the catalog; only units, the campaign's names and the issuer stay Chinese."""
    for now in DATES:
        for milestone in MILESTONES:
            text = english(lambda now=now, m=milestone: assessment.circular(run.db, at(now), m, fmt=fmt).text)
            assert en_findings(text, data) == [], (now, milestone)
            assert "On time (" in text and "Points deducted" in text


def test_circular_in_chinese_keeps_its_form(run):
    """The Chinese circular still reads as a city office issues it (sections, wording and the sign-off)."""
    text = assessment.circular(run.db, at(LATER), "provincial_demo").text
    for words in ("各县区安委会：", "一、按时完成的（", "二、逾期完成的（1 个）", "三、未完成的（", "四、考核扣分",
                  "推进方案》要求", "现将有关情况通报如下：", "峪耳崖镇（逾期 10 天完成，审计记录 #"):
        assert words in text


@pytest.mark.parametrize("unit", [YUERYA, KUANCHENG, DAGE])
def test_dossier_in_english_has_no_chinese_but_data(run, data, unit):
    """A township's and a county's dossier, HTML and Markdown, in English: identity, checklist, evidence,
    history and the signature block in the catalog's words."""
    for now in DATES:
        for render in (dossier.html, dossier.markdown):
            text = english(lambda now=now, render=render: render(dossier.build(run.db, unit, at(now))))
            assert en_findings(text, data) == [], (unit, now, render.__name__)


def test_progress_exports_in_english_have_no_chinese_but_data(run, data):
    """The CSV and every sheet of the workbook (names, headers, status words, chart title) in English."""
    with language("en"):
        rep = progress.build(run.db, at(LATER))
        csv_text = progress.csv_text(rep)
        book = openpyxl.load_workbook(io.BytesIO(progress.workbook(rep)))
    assert en_findings(csv_text, data) == []
    assert csv_text.startswith("Code,County,Stage,Townships,Up to standard,Up to standard (%),Started")
    assert book.sheetnames == ["County progress", "Overdue units", "Trend", "Milestones met", "Early warning"]
    cells = "\n".join(str(v) for ws in book for row in ws.iter_rows(values_only=True) for v in row if v is not None)
    assert en_findings(cells, data) == []


def test_dossier_names_every_action_of_the_log():
    """Each action the audit log can hold on a unit has a name in the dossier, user_edit and contact_update
    among them (shown as raw identifiers before): Chinese by default, English on request."""
    from anjian.states.labels import TRIGGER_NAMES
    from anjian.workflow.store.rebuild import HANDLERS

    for action in [*HANDLERS, "denied", "circular", *TRIGGER_NAMES]:
        with language("zh"):
            assert _CJK.search(dossier.action_name(action)), action
        with language("en"):
            words = dossier.action_name(action)
            assert not _CJK.search(words) and (action in TRIGGER_NAMES or words != action), action
    with language("zh"):
        assert (dossier.action_name("user_edit"), dossier.action_name("contact_update")) == ("修改用户", "更新联系人")


def test_the_catalog_is_read_from_the_report_templates():
    """`translations` extracts the templates' words (`{{ _("…") }}`, `pgettext`), so the catalog test covers them."""
    found = translations.template_messages()
    assert any(w.startswith("templates/report_progress.html.j2") for w in found[(None, "Trend data")])
    assert any(w.startswith("templates/circular.md.j2") for w in found[(None, "4. Points deducted in the assessment")])
    assert ("dossier", "Matter") in found
    assert (None, "Trend data") in translations.all_messages()
