"""我的待办 (/): what is due for the signed-in official — their units, next deadlines, what is missing,
what is overdue and what waits for their decision — from a few commands scoped to their unit."""

from __future__ import annotations

from support import at, clock_at, record_checklist
from support_web import browser

from anjian.workflow.services.advance import advance
from anjian.workflow.services.checklist import record

YUERYA = "130827102"  # 峪耳崖镇, a provincial demonstration township of 宽城
KUANCHENG = "130827100"  # 宽城镇
JAN5 = "2015-01-05T09:00"


def test_a_chief_sees_the_missing_items_and_the_next_deadline(served):
    """峪耳崖镇's chief sees each checklist item not yet ok, linked to its field, and the 31 March deadline."""
    advance(served.db, YUERYA, "start", "chief_yuerya", at("2015-01-02T09:00"))
    record(served.db, YUERYA, "org.safety_committee", "是", "chief_yuerya", at("2015-01-02T09:00"))
    with clock_at(JAN5):
        page = browser(served, "chief_yuerya").get("/")
    assert page.status_code == 200
    text = page.text
    assert "我的待办" in text and "承德市宽城满族自治县峪耳崖镇" in text and "创建中" in text
    assert f'href="/units/{YUERYA}#item-org.station"' in text  # not recorded yet: missing
    assert f'href="/units/{YUERYA}#item-org.safety_committee"' not in text  # recorded: ok
    assert "省定5家示范镇完成规范化建设" in text and "2015-03-31" in text and "剩 85 天" in text
    assert "申请验收" in text and "尚不能办理" in text  # apply: not yet, with the guard's reasons
    assert 'href="/password"' in text and "修改密码" in text
    assert 'href="/queue"' not in text


def test_a_chief_whose_checklist_is_complete_may_apply(served):
    """With the checklist complete, the chief's page says nothing is missing and that applying can be done now."""
    advance(served.db, YUERYA, "start", "chief_yuerya", at("2015-01-02T09:00"))
    record_checklist(served.db, YUERYA, {"provincial_demo"}, actor="chief_yuerya", now=at("2015-01-02T09:00"))
    with clock_at(JAN5):
        text = browser(served, "chief_yuerya").get("/").text
    assert "检查清单已填报齐全" in text and "#item-" not in text
    assert "现在可以办理" in text and "申请验收" in text


def test_an_inspector_sees_the_applied_count(served):
    """A city inspector's page counts the applied townships of the city and links the queue."""
    for code, cohorts, day in ((KUANCHENG, (), "2015-01-03T09:00"), (YUERYA, {"provincial_demo"}, "2015-01-04T09:00")):
        advance(served.db, code, "start", "li", at(day))
        record_checklist(served.db, code, cohorts, actor="li", now=at(day))
        advance(served.db, code, "apply", "li", at(day))
    with clock_at(JAN5):
        page = browser(served, "wang").get("/")
    assert page.status_code == 200
    text = page.text
    assert "2 个乡镇已申请验收，等待验收结论" in text and 'href="/queue"' in text
    assert text.index("宽城镇") < text.index("峪耳崖镇")  # the longest waiting first
    assert "2015-01-03 09:00" in text
    assert "各县区" in text and 'href="/units/130827"' in text  # the city's counties, each with its state
    assert "县区推进方案报市安委会办公室" not in text or "逾期" in text


def test_a_county_official_sees_the_plan_and_the_county_s_townships(served):
    """Before the plan is in, li's page lists what submitting it still needs, the overdue plan and the townships."""
    with clock_at(JAN5):
        page = browser(served, "li").get("/")
    assert page.status_code == 200
    text = page.text
    assert "报送推进方案" in text and "尚不能办理" in text and "--evidence" in text
    assert "县区推进方案报市安委会办公室" in text and "逾期 6 天" in text  # due 30 December
    assert 'href="/units/130827#item-county.leadership_group"' in text
    assert "本县区各乡镇" in text and f'href="/units/{YUERYA}"' in text and "没有等待验收的乡镇" in text


def test_the_city_office_sees_the_campaign_s_dates_and_overdue_counties(served):
    """The city office's page shows the next dates of the campaign and the counties that missed the plan."""
    with clock_at(JAN5):
        page = browser(served, "office").get("/")
    assert page.status_code == 200
    text = page.text
    assert "2015-03-31" in text and "2014-12-30" not in text.split("近期时限")[1].split("逾期事项")[0]
    assert "逾期事项" in text and "方案报送" in text and 'href="/dashboard"' in text


def test_the_page_in_english(served):
    """With ?lang=en the same page reads in English (the words come from the catalog, not the template)."""
    with clock_at(JAN5):
        page = browser(served, "li").get("/?lang=en")
    assert page.status_code == 200
    assert "My tasks" in page.text and "Next deadlines" in page.text and "submit the plan" in page.text
    assert "我的待办" not in page.text

def test_the_pages_answer_within_a_second_on_the_national_registry(national_registry_copy, tmp_path):
    """On the national registry (44,700 units), 5,000 townships under way, every official's 我的待办 and
    the queue answer in under a second: a few scoped commands, never one per township."""
    import statistics
    import time

    from support import TEST_OFFICIALS, add_officials
    from support_server import serving

    from anjian.workflow.services.advance import BatchRow, advance_batch
    from anjian.workflow.settings import resolve
    from anjian.workflow.views.units import units

    db = national_registry_copy.db
    add_officials(db, TEST_OFFICIALS)
    towns = [u.code for u in units(db, at(JAN5), level="township", moved=False)]
    ours = [u.code for u in units(db, at(JAN5), county="130827", level="township", moved=False)]
    started = sorted(set(towns[::9]) | set(ours))
    assert advance_batch(db, [BatchRow(i, c, "start") for i, c in enumerate(started)], "li", at(JAN5)).complete
    record_checklist(db, KUANCHENG, (), actor="li", now=at(JAN5))
    advance(db, KUANCHENG, "apply", "li", at(JAN5))
    settings = resolve(national_registry_copy.url, env={"ANJIAN_HOME": str(tmp_path / "home")})
    with serving(db, settings) as served, clock_at("2016-02-01T09:00"):
        for official, path in (("chief_yuerya", "/"), ("li", "/"), ("office", "/"), ("wang", "/"), ("wang", "/queue")):
            client = browser(served, official)
            client.get(path)  # the first request of a session warms its caches
            took = []
            for _ in range(3):
                start = time.perf_counter()
                page = client.get(path)
                took.append(time.perf_counter() - start)
                assert page.status_code == 200, (official, path, page.text[:300])
            assert statistics.median(took) < 1.0, (official, path, took)
