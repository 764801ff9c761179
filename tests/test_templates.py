"""The notice templates: every one renders with sample data in both languages, a missing variable is an
error, markup and template syntax in the data come out as text, and the Chinese notice has the official form."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
from email import policy

import pytest
from jinja2 import meta
from jinja2.exceptions import UndefinedError
from support import T0

from anjian.notifications.render import (
    LANGUAGES,
    PARTS,
    NoticeLine,
    chinese_date,
    context,
    environment,
    render,
    render_parts,
    template,
    template_names,
)
from anjian.workflow.clock import SHANGHAI
from anjian.workflow.reminders.run import run_pass
from anjian.workflow.services import contacts
from anjian.workflow.settings import NotifySettings

TODAY = dt.date(2015, 3, 24)
ISSUER = "承德市安全生产委员会办公室"
CAMPAIGN = "承德市乡镇安全监管规范化建设"
LATE = NoticeLine("130827", "承德市宽城满族自治县", "plan_submission", "县区推进方案报市安委会办公室",
                  dt.date(2014, 12, 30), "o+78", "overdue", 84)
SOON = NoticeLine("130827102", "承德市宽城满族自治县峪耳崖镇", "provincial_demo", "省定5家示范镇完成规范化建设",
                  dt.date(2015, 3, 31), "d-7", "reminder", 7)
WARNED = NoticeLine("130821", "承德市承德县", "provincial_demo", "省定5家示范镇完成规范化建设", dt.date(2015, 3, 31),
                    "w-2015-W13", "warning", 7, 0.234, dt.date(2015, 8, 14), 4)
SAMPLES = {"reminder": [SOON], "overdue": [LATE], "mixed": [LATE, SOON], "warning": [WARNED], "all": [LATE, SOON, WARNED]}
HOSTILE = ["<script>alert(1)</script>", "{{ 7*7 }}", "{% if true %}x{% endif %}"]


def sample(kind: str, language: str = "zh", name: str = "李科长", unit: str = "承德市宽城满族自治县",
           lines: list[NoticeLine] | None = None) -> dict:
    """The context of a notice of this sample kind (reminder, overdue, warning, mixed or all)."""
    lines = SAMPLES[kind] if lines is None else lines
    kinds = {x.kind for x in lines}
    notice_kind = "overdue" if "overdue" in kinds else "reminder" if "reminder" in kinds else "warning"
    return context("20150324-0123456789abcdef", notice_kind, name, unit, lines, CAMPAIGN, ISSUER, TODAY, language)


def language_of(template: str) -> str:
    return template.split(".")[1]


def source_of(template: str) -> str:
    env = environment()
    return env.loader.get_source(env, template)[0]


def test_every_language_has_each_template_render_uses():
    """For each language there is a subject, a text and an HTML notice and a robot message, and no template besides."""
    expected = {f"{stem}.{lang}.{ext}.j2" for lang in LANGUAGES
                for stem, ext in (("subject", "txt"), ("notice", "txt"), ("notice", "html"), ("webhook", "md"))}
    assert set(template_names()) == expected


@pytest.mark.parametrize("kind", sorted(SAMPLES))
@pytest.mark.parametrize("template", template_names())
def test_every_template_renders_with_sample_data(template, kind):
    """Each template renders each sample kind in its language and names the recipient's unit."""
    ctx = sample(kind, language_of(template))
    out = environment().get_template(template).render(ctx)
    assert "承德市宽城满族自治县" in out
    if not template.startswith("subject."):
        for line in SAMPLES[kind]:
            assert line.unit_path in out and line.milestone_name in out
        assert ctx["notice_id"] in out


@pytest.mark.parametrize("kind", sorted(SAMPLES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_render_gives_a_one_line_subject_and_tidy_text(language, kind):
    """The subject is one line (it becomes a mail header); text and robot message never leave two blank lines in a row."""
    r = render(sample(kind, language), language)
    assert r.subject and "\n" not in r.subject
    for body in (r.text, r.markdown):
        assert "\n\n\n" not in body
    assert r.html.lstrip().startswith("<!DOCTYPE html>") and r.html.rstrip().endswith("</html>")


@pytest.mark.parametrize(("kind", "subject"), [
    ("overdue", "【逾期通知】承德市宽城满族自治县：乡镇安全监管规范化建设有 1 项节点已逾期"),
    ("mixed", "【逾期通知】承德市宽城满族自治县：乡镇安全监管规范化建设有 1 项节点已逾期"),
    ("reminder", "【到期提醒】承德市宽城满族自治县：乡镇安全监管规范化建设有 1 项节点即将到期"),
    ("warning", "【预警通知】承德市宽城满族自治县：乡镇安全监管规范化建设有 1 项节点按目前进度可能不能按期完成"),
    ("all", "【逾期通知】承德市宽城满族自治县：乡镇安全监管规范化建设有 1 项节点已逾期"),
])
def test_chinese_subject_names_the_kind_and_count(kind, subject):
    """An overdue item makes the subject an overdue notice; else an early warning makes it a warning; otherwise it is a reminder."""
    assert render(sample(kind)).subject == subject


def test_chinese_text_notice_has_the_official_form():
    """Title, addressee with a full-width colon, the body citing the plan, the items, then issuing office and date in 年月日."""
    text = render(sample("mixed")).text
    lines = text.splitlines()
    assert lines[0] == "关于乡镇安全监管规范化建设节点逾期的通知"
    assert lines[1] == ""
    assert lines[2] == "承德市宽城满族自治县李科长："
    assert lines[4] == "根据《承德市乡镇安全监管规范化建设推进方案》的时间安排，截至2015年3月24日，涉及贵单位的规范化建设事项如下："
    assert "一、已逾期事项（共 1 项）" in lines
    assert "1. 承德市宽城满族自治县：县区推进方案报市安委会办公室，期限 2014年12月30日，已逾期 84 天。" in lines
    assert "二、即将到期事项（共 1 项）" in lines
    assert "1. 承德市宽城满族自治县峪耳崖镇：省定5家示范镇完成规范化建设，期限 2015年3月31日，还剩 7 天。" in lines
    signature = lines.index(ISSUER)
    assert lines[signature + 1] == "2015年3月24日"
    assert lines[signature - 1] == ""
    assert lines[signature - 2].startswith("请立即组织整改")
    assert lines[-1] == "（本通知由安监规范化建设工作系统自动发送，编号 20150324-0123456789abcdef）"


def test_chinese_warning_numbers_its_section_after_the_others_and_says_what_it_means():
    """The warnings come third after overdue items and reminders (first when alone), each with its chance, expected
    day and townships still needed, followed by what a warning means and what to do."""
    text = render(sample("all")).text
    assert "三、进度预警事项（共 1 项）" in text
    assert ("1. 按目前进度，承德市承德县“省定5家示范镇完成规范化建设”节点（期限 2015年3月31日，还剩 7 天）按期完成的可能性约为 23%，"
            "预计 2015年8月14日完成，尚需验收 4 个乡镇。") in text.splitlines()
    assert "倒排工期" in text and "不是考核结论" in text
    alone = render(sample("warning")).text
    assert alone.startswith("关于乡镇安全监管规范化建设节点按期完成风险的预警通知\n")
    assert "一、进度预警事项（共 1 项）" in alone and "二、" not in alone
    late = dataclasses.replace(WARNED, probability=0.003, expected=None)
    text = render(sample("warning", lines=[late])).text
    assert "按期完成的可能性不足 1%，预计到期限后两年仍难以完成" in text


def test_chinese_reminder_only_numbers_its_section_one():
    """A notice with only reminders numbers that section 一 and asks for completion on time."""
    text = render(sample("reminder")).text
    assert text.startswith("关于乡镇安全监管规范化建设节点即将到期的提醒\n")
    assert "一、即将到期事项（共 1 项）" in text
    assert "已逾期" not in text and "二、" not in text
    assert "请对照标准抓紧落实，确保按期完成。" in text


@pytest.mark.parametrize(("day", "words"), [
    (dt.date(2015, 3, 24), "2015年3月24日"),
    (dt.date(2015, 3, 4), "2015年3月4日"),
    (dt.date(2014, 12, 30), "2014年12月30日"),
])
def test_chinese_date_has_no_leading_zeros(day, words):
    """Dates are written the official way: 2015年3月4日, not 2015年03月04日."""
    assert chinese_date(day) == words


def test_english_notice_uses_iso_dates():
    """The English notice writes dates as ISO 8601 and says how late each item is."""
    r = render(sample("mixed", "en"), "en")
    assert r.subject.startswith("[Overdue] 承德市宽城满族自治县:")
    assert "deadline 2014-12-30, 84 day(s) late." in r.text
    assert "deadline 2015-03-31, 7 day(s) left." in r.text
    assert r.text.rstrip().splitlines()[-4:-2] == [ISSUER, "2015-03-24"]


def test_unknown_language_is_refused():
    """Rendering in a language without templates is an error, not a silent fallback."""
    with pytest.raises(ValueError, match="fr"):
        render(sample("mixed"), "fr")


@pytest.mark.parametrize("template", template_names())
def test_every_variable_a_template_uses_is_required(template):
    """Leaving out any variable a template names makes rendering fail (StrictUndefined), for some sample kind."""
    names = meta.find_undeclared_variables(environment().parse(source_of(template)))
    assert names
    compiled = environment().get_template(template)
    for name in sorted(names):
        failures = 0
        for kind in SAMPLES:
            ctx = sample(kind, language_of(template))
            del ctx[name]
            try:
                compiled.render(ctx)
            except UndefinedError:
                failures += 1
        assert failures, f"{template} renders without {name}"


@pytest.mark.parametrize("template", [t for t in template_names() if not t.startswith("subject.")])
def test_an_item_missing_a_field_fails_to_render(template):
    """An item without its days fails loudly rather than printing an empty number."""
    ctx = sample("mixed", language_of(template))
    for part in ("overdue", "reminders"):  # the items as mappings with every field but the days
        ctx[part] = [{k: v for k, v in item._asdict().items() if k != "days"} for item in ctx[part]]
    assert ctx["overdue"] and ctx["reminders"]
    with pytest.raises(UndefinedError):
        environment().get_template(template).render(ctx)


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("language", LANGUAGES)
def test_markup_in_data_is_escaped_in_html(language, hostile):
    """Markup or template syntax in a name or unit path is escaped in HTML and never evaluated."""
    line = NoticeLine("130827", hostile, "plan_submission", "县区推进方案报市安委会办公室", dt.date(2014, 12, 30),
                      "o+1", "overdue", 1)
    r = render(sample("overdue", language, name=hostile, unit=hostile, lines=[line]), language)
    assert "<script>" not in r.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.html or hostile in r.html
    assert "49" not in r.html.replace("20150324", "")
    assert ">x<" not in r.html


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("language", LANGUAGES)
def test_markup_in_data_is_literal_in_text(language, hostile):
    """In the plain text, subject and robot message the same data appears literally, as written, not evaluated."""
    line = NoticeLine("130827", hostile, "plan_submission", "县区推进方案报市安委会办公室", dt.date(2014, 12, 30),
                      "o+1", "overdue", 1)
    r = render(sample("overdue", language, name=hostile, unit=hostile, lines=[line]), language)
    for out in (r.text, r.markdown, r.subject):
        assert hostile in out
        assert "49" not in out.replace("20150324", "")
        assert "&lt;" not in out


def test_a_contact_named_with_markup_is_escaped_in_the_mailed_html(chengde, tmp_path):
    """End to end: a contact named `<script>…</script>` gets a message whose HTML part shows the name as text."""
    contacts.add(chengde, "宽城县", "<script>alert(1)</script>", "li@kc.gov.cn", None, "admin", T0)
    now = dt.datetime(2014, 12, 31, 8, 30, tzinfo=SHANGHAI)
    result = run_pass(chengde, now, NotifySettings(), tmp_path / "outbox")
    (sent,) = result.sent
    msg = email.message_from_bytes((tmp_path / "outbox" / f"{sent.notice_id}.eml").read_bytes(), policy=policy.default)
    html = msg.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "承德市宽城满族自治县<script>alert(1)</script>：" in msg.get_body(("plain",)).get_content()


# -- compiled once, rendered as Template.render would ---------------------------------------------
@pytest.mark.parametrize("hostile", [None, *HOSTILE])
@pytest.mark.parametrize("kind", sorted(SAMPLES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_render_gives_what_each_template_renders(language, kind, hostile):
    """`render` (cached templates, no per-call merging of globals) gives exactly what Template.render gives."""
    lines = None if hostile is None else [dataclasses.replace(x, unit_path=hostile) for x in SAMPLES[kind]]
    ctx = sample(kind, language, **({} if hostile is None else {"name": hostile, "unit": hostile}), lines=lines)
    r = render(ctx, language)
    env = environment()
    assert r.subject == env.get_template(f"subject.{language}.txt.j2").render(ctx).strip()
    assert r.text == env.get_template(f"notice.{language}.txt.j2").render(ctx)
    assert r.html == env.get_template(f"notice.{language}.html.j2").render(ctx)
    assert r.markdown == env.get_template(f"webhook.{language}.md.j2").render(ctx)
    assert render_parts(ctx, language, ("subject", "html")) == {"subject": r.subject, "html": r.html}


def test_templates_are_loaded_once_per_process(monkeypatch):
    """Rendering a thousand notices asks the environment for no template (which would stat its file each
    time): each is compiled once and kept."""
    render(sample("mixed"), "zh")
    asked = []
    env = environment()
    real = env.get_template
    monkeypatch.setattr(env, "get_template", lambda name, *a, **k: asked.append(name) or real(name, *a, **k))
    for _ in range(1000):
        render(sample("mixed"), "zh")
    assert asked == []
    assert template("html", "zh") is template("html", "zh")


def test_a_missing_variable_still_fails_through_render():
    """The faster path keeps StrictUndefined: an item without its days fails to render."""
    ctx = sample("mixed")
    first = ctx["overdue"][0]._asdict()
    del first["days"]
    ctx["overdue"][0] = first
    with pytest.raises(UndefinedError):
        render(ctx, "zh")


def test_a_notice_rendered_from_its_stored_content_is_the_same():
    """What a claimed notice stores (its content) renders to the same subject, text, HTML and markdown,
    byte for byte, as the context it was made from, in each language."""
    from anjian.notifications.render import content, parts_of

    lines = [NoticeLine("130827102", "宽城<b>峪耳崖镇</b>", "provincial_demo", "省级示范乡镇达标", dt.date(2015, 3, 31),
                        "d-7", "reminder", 7),
             NoticeLine("130827", "宽城县", "plan_submission", "县区报送方案", dt.date(2014, 12, 30), "overdue-1", "overdue", 84),
             WARNED, dataclasses.replace(WARNED, unit_code="130826", expected=None, probability=0.0)]
    for language in LANGUAGES:
        args = ("20150324-00aa", "overdue", "王站长", "河北省承德市宽城满族自治县", lines, "承德市乡镇安全监管规范化建设",
                "承德市安委会办公室", dt.date(2015, 3, 24), language)
        stored = content(*args)
        assert len(stored.encode()) < sum(len(v.encode()) for v in render_parts(context(*args), language, PARTS).values()) / 3
        assert parts_of(stored, PARTS) == render_parts(context(*args), language, PARTS)
