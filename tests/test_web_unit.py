"""`/units/CODE`: a township's checklist form and triggers, a county's page, the city's page — each run
through the CLI's own commands as the signed-in official, refused as the commands refuse."""

from __future__ import annotations

import hashlib
import re

import pytest
from support import at, clock_at, record_checklist, snapshot
from support_web import browser, csrf_of

YUERYA = "130827102"  # 宽城峪耳崖镇, the provincial demonstration township of chief_yuerya
KUANCHENG_TOWN = "130827100"  # 宽城镇, another township of 宽城
COUNTY = "130827"
DAY = "2015-01-05T09:00"
CAMPAIGN_TABLES = ("units", "unit_cohorts", "checklist_values", "audit_log", "evidence")


def written(served) -> dict:
    """The campaign's tables and the evidence store: what a refused form must leave as it was."""
    state = snapshot(served.db, served.state.settings.evidence_dir)
    return {k: v for k, v in state.items() if k in CAMPAIGN_TABLES or k == str(served.state.settings.evidence_dir)}


def show(served, unit: str = YUERYA) -> dict:
    """The unit as `show` gives it now (read straight from the database)."""
    from anjian.workflow.formats.output import to_jsonable
    from anjian.workflow.views.show import show as compute

    return to_jsonable(compute(served.db, unit, at(DAY)))


def item_block(html: str, item: str) -> str:
    """The HTML of one checklist item of the form (its div)."""
    found = re.search(rf'<div class="item[^"]*" id="item-{re.escape(item)}">(.*?)</div>\s*(?=<div class="item|</fieldset>)',
                      html, re.S)
    assert found, f"no item {item} in the form"
    return found.group(1)


def post(client, url: str, page_html: str, data: dict, files: dict | None = None):
    """Post a form of the page (its CSRF token and version), as a browser would (multipart)."""
    version = re.search(r'name="version" value="(\d+)"', page_html)
    body = {"csrf_token": csrf_of(page_html), **({"version": version.group(1)} if version else {}), **data}
    return client.post(url, data=body, files=files or {"_": ("", b"")})


def start(served, chief) -> None:
    with clock_at(DAY):
        page = chief.get(f"/units/{YUERYA}")
        r = post(chief, f"/units/{YUERYA}", page.text, {"trigger": "start", "note": ""})
    assert r.status_code == 303 and r.headers["location"] == f"/units/{YUERYA}?done=start", r.text


def test_the_chief_sees_the_checklist_by_area_with_item_codes_and_no_verdicts(served):
    """A chief's township page is one form of six areas whose fields are item codes, with evidence inputs,
    the missing items linked on top, and no accept or reject button."""
    chief = browser(served, "chief_yuerya")
    with clock_at(DAY):
        page = chief.get(f"/units/{YUERYA}")
    assert page.status_code == 200
    html = page.text
    assert html.count("<legend>") == 6
    for area in ("健全安全监管机构", "明确安全监管责任", "加强监管队伍建设", "规范内部运行机制", "保障运行经费到位", "创新安全监管模式"):
        assert f"<legend>{area}" in html
    assert 'name="six.vehicle" value="是"' in html and 'name="staff.part_time"' in html
    assert 'name="ledger.documents"' in html and 'name="evidence:six.vehicle"' in html
    assert 'href="#item-org.safety_committee"' in html and "省定示范乡镇" in html
    assert 'name="trigger" value="start"' in html
    assert 'value="accept"' not in html and 'value="reject"' not in html
    assert "未开展" in html and "县区推进方案" not in html  # a township's milestones, not the county's plan


def test_the_chief_records_changed_items_with_evidence(served):
    """Saving the form records the items whose values changed, with the evidence file, whose SHA-256 the page
    then shows; items left alone are not recorded again."""
    chief = browser(served, "chief_yuerya")
    proof = "车辆登记证".encode() * 40
    with clock_at(DAY):
        page = chief.get(f"/units/{YUERYA}")
        r = post(chief, f"/units/{YUERYA}", page.text, {"six.vehicle": "是", "staff.part_time": "3", "ledger.documents": "张三"},
                 files={"evidence:six.vehicle": ("车辆登记证.pdf", proof, "application/pdf")})
        assert r.status_code == 303 and r.headers["location"] == f"/units/{YUERYA}?done=recorded", r.text
        after = chief.get(r.headers["location"])
    values = {c["item"]: c["value"] for c in show(served)["checklist"]}
    assert (values["six.vehicle"], values["staff.part_time"], values["ledger.documents"]) == (True, 3, "张三")
    assert "清单已保存" in after.text
    block = item_block(after.text, "six.vehicle")
    assert "车辆登记证.pdf" in block and hashlib.sha256(proof).hexdigest() in block
    from anjian.workflow.views.history import history

    rows = [r for r in history(served.db, YUERYA) if r.trigger == "record"]
    assert len(rows) == 3
    with clock_at(DAY):  # the same values again and one more: only the new one is recorded
        r = post(chief, f"/units/{YUERYA}", after.text, {"six.vehicle": "是", "staff.part_time": "3", "six.office_space": "是"})
    assert r.status_code == 303
    rows = [r for r in history(served.db, YUERYA) if r.trigger == "record"]
    assert len(rows) == 4 and rows[-1].detail["item"] == "six.office_space"


def test_a_bad_value_is_refused_beside_its_item_and_nothing_is_written(served):
    """A count that is not a number is refused (400) with the reason beside its item, the typed values kept."""
    chief = browser(served, "chief_yuerya")
    before = written(served)
    with clock_at(DAY):
        page = chief.get(f"/units/{YUERYA}")
        r = post(chief, f"/units/{YUERYA}", page.text, {"staff.part_time": "三", "six.vehicle": "是"})
    assert r.status_code == 400
    assert "“三”" in item_block(r.text, "staff.part_time")
    assert 'name="six.vehicle" value="是" checked' in r.text
    assert written(served) == before


def test_applying_with_items_missing_is_refused_with_the_reasons_beside_the_items(served):
    """Apply with the checklist incomplete answers 409: each missing item's reason stands beside it, the
    other reasons on top, and nothing is written."""
    chief = browser(served, "chief_yuerya")
    start(served, chief)
    record_checklist(served.db, YUERYA, {"provincial_demo"}, skip=("six.vehicle", "staff.villages"), actor="chief_yuerya",
                     now=at(DAY))
    before = written(served)
    with clock_at(DAY):
        page = chief.get(f"/units/{YUERYA}")
        assert 'name="trigger" value="apply"' in page.text
        r = post(chief, f"/units/{YUERYA}", page.text, {"trigger": "apply", "note": "申请验收"})
    assert r.status_code == 409
    assert "现在不能“申请验收”" in r.text
    assert "（six.vehicle）" in item_block(r.text, "six.vehicle")
    assert "（staff.villages）" in item_block(r.text, "staff.villages")
    assert "（six.vehicle）" not in item_block(r.text, "six.office_space")
    assert ">申请验收</textarea>" in r.text  # the note typed is kept
    assert written(served) == before
    assert show(served)["state"] == "building"


def test_a_complete_checklist_lets_the_chief_apply_and_the_inspector_judge(served):
    """With the checklist complete the chief applies (303); the inspector then sees accept and reject, a
    rejection without a note is refused with nothing written, with a note it sends the township back and
    the chief reads the opinion."""
    chief = browser(served, "chief_yuerya")
    start(served, chief)
    record_checklist(served.db, YUERYA, {"provincial_demo"}, actor="chief_yuerya", now=at(DAY))
    with clock_at(DAY):
        page = chief.get(f"/units/{YUERYA}")
        assert "清单各项均已达标" in page.text
        r = post(chief, f"/units/{YUERYA}", page.text, {"trigger": "apply", "note": ""})
        assert r.status_code == 303 and r.headers["location"] == f"/units/{YUERYA}?done=apply"
        assert 'value="accept"' not in chief.get(f"/units/{YUERYA}").text
    assert show(served)["state"] == "applied"
    inspector = browser(served, "inspector")
    with clock_at("2015-01-05T11:00"):
        page = inspector.get(f"/units/{YUERYA}")
        assert 'name="trigger" value="accept"' in page.text and 'name="trigger" value="reject"' in page.text
        assert 'value="apply"' not in page.text
        assert 'name="six.vehicle"' not in page.text and "六有：有执法车辆" in page.text  # the checklist, read only
        before = written(served)
        r = post(inspector, f"/units/{YUERYA}", page.text, {"trigger": "reject", "note": "  "})
        assert r.status_code == 409 and "--note" in r.text
        assert written(served) == before
        r = post(inspector, f"/units/{YUERYA}", page.text, {"trigger": "reject", "note": "台账不全，请补充"})
        assert r.status_code == 303 and r.headers["location"] == f"/units/{YUERYA}?done=reject"
        seen = chief.get(f"/units/{YUERYA}")
    assert show(served)["state"] == "rectifying"
    assert "台账不全，请补充" in seen.text and "inspector" in seen.text and 'value="resubmit"' in seen.text


def test_a_chief_is_refused_another_township_and_its_county(served):
    """Another township's page (and the county's) is refused to a chief with 403, as `show` refuses it, and
    so is a verdict posted on their own township."""
    chief = browser(served, "chief_yuerya")
    with clock_at(DAY):
        other = chief.get(f"/units/{KUANCHENG_TOWN}")
        county = chief.get(f"/units/{COUNTY}")
        before = written(served)
        mine = chief.get(f"/units/{YUERYA}")
        r = post(chief, f"/units/{KUANCHENG_TOWN}", mine.text, {"trigger": "start", "note": ""})
        verdict = post(chief, f"/units/{YUERYA}", mine.text, {"trigger": "accept", "note": "合格"})  # a forged button
    assert other.status_code == 403 and "宽城镇" in other.text and "管辖" in other.text
    assert 'name="trigger"' not in other.text
    assert county.status_code == 403
    assert r.status_code == 403
    assert verdict.status_code == 403 and "验收通过" in verdict.text and 'value="accept"' not in verdict.text
    assert {k: v for k, v in written(served).items() if k != "audit_log"} == {
        k: v for k, v in before.items() if k != "audit_log"}  # a refusal is audited, nothing else
    assert show(served, KUANCHENG_TOWN)["state"] == "not_started"


def test_a_form_without_its_csrf_token_is_refused_with_nothing_written(served):
    """A POST lacking the session's CSRF token answers 403 and records nothing."""
    chief = browser(served, "chief_yuerya")
    before = written(served)
    with clock_at(DAY):
        r = chief.post(f"/units/{YUERYA}", data={"six.vehicle": "是", "trigger": "start"}, files={"_": ("", b"")})
    assert r.status_code == 403 and "表单" in r.text
    assert written(served) == before


@pytest.fixture
def small_uploads(chengde, db_url, tmp_path):
    """The service with a 1,000-byte upload limit."""
    from support_server import serving

    from anjian.workflow.settings import resolve

    settings = resolve(db_url, env={"ANJIAN_HOME": str(tmp_path / "home")})
    with serving(chengde, settings, max_upload_bytes=1000) as s:
        yield s


def test_an_evidence_file_over_the_limit_is_refused_with_nothing_written(small_uploads):
    """An evidence file larger than max_upload_bytes is refused (413) and nothing is recorded."""
    served = small_uploads
    chief = browser(served, "chief_yuerya")
    before = written(served)
    with clock_at(DAY):
        page = chief.get(f"/units/{YUERYA}")
        r = post(chief, f"/units/{YUERYA}", page.text, {"six.vehicle": "是"},
                 files={"evidence:six.vehicle": ("大文件.pdf", b"x" * 5000, "application/pdf")})
    assert r.status_code == 413 and "大文件.pdf" in r.text and "1000" in r.text
    assert written(served) == before
    assert not any((served.state.settings.data_dir / "requests").rglob("大文件.pdf"))


def test_a_stale_version_is_a_conflict_shown_with_the_unit_as_it_is_now(served):
    """A form saved after someone else changed the unit answers 409 with who changed it, and records nothing."""
    chief = browser(served, "chief_yuerya")
    with clock_at(DAY):
        page = chief.get(f"/units/{YUERYA}")
    record_checklist(served.db, YUERYA, {"provincial_demo"}, actor="chief_yuerya", now=at(DAY))
    before = written(served)
    with clock_at(DAY):
        r = post(chief, f"/units/{YUERYA}", page.text, {"six.vehicle": "否"})
    assert r.status_code == 409 and "chief_yuerya" in r.text and "版本" in r.text
    assert written(served) == before


def test_a_name_leads_to_the_code_s_page(served):
    """A unit named by its name is redirected to its code's page; an unknown unit is not found (404)."""
    chief = browser(served, "chief_yuerya")
    with clock_at(DAY):
        r = chief.get("/units/宽城峪耳崖镇")
    assert r.status_code == 303 and r.headers["location"] == f"/units/{YUERYA}"
    with clock_at(DAY):
        nowhere = chief.get("/units/999999999")
    assert nowhere.status_code == 404 and "999999999" in nowhere.text


def test_the_county_page_lists_townships_and_takes_the_plan_with_its_document(served):
    """The county official sees the county's townships linked, records its checklist, submits the plan with
    its document and then sees the document's name and SHA-256; the plan milestone is met."""
    li = browser(served, "li")
    plan = "宽城县推进方案".encode() * 30
    with clock_at("2014-12-20T09:00"):
        page = li.get(f"/units/{COUNTY}")
        assert page.status_code == 200
        assert f'href="/units/{YUERYA}"' in page.text and "峪耳崖镇" in page.text and page.text.count('<tr><td><a href="/units/') == 18
        assert "尚未提交" in page.text
        r = post(li, f"/units/{COUNTY}", page.text, {"county.leadership_group": "组长：县长 李四"})
        assert r.status_code == 303, r.text
        page = li.get(f"/units/{COUNTY}")
        r = post(li, f"/units/{COUNTY}", page.text, {"trigger": "submit_plan", "note": "推进方案"},
                 files={"evidence": ("宽城县推进方案.pdf", plan, "application/pdf")})
        assert r.status_code == 303 and r.headers["location"] == f"/units/{COUNTY}?done=submit_plan", r.text
        after = li.get(r.headers["location"])
    assert "宽城县推进方案.pdf" in after.text and hashlib.sha256(plan).hexdigest() in after.text
    assert show(served, COUNTY)["state"] == "demonstration"
    assert "按期完成" in after.text  # the plan milestone, met on time


def test_the_county_official_designates_a_township(served):
    """A county official marks a township as one with a heavy supervision task from the county's page."""
    li = browser(served, "li")
    with clock_at("2014-12-20T09:00"):
        page = li.get(f"/units/{COUNTY}")
        r = li.post(f"/units/{COUNTY}", data={"csrf_token": csrf_of(page.text), "township": KUANCHENG_TOWN,
                                              "cohort": "heavy_task"})
    assert r.status_code == 303 and r.headers["location"] == f"/units/{COUNTY}?done=designated", r.text
    assert "heavy_task" in show(served, KUANCHENG_TOWN)["cohorts"]


def test_the_city_page_lists_the_counties(served):
    """The city's page links each county and the dashboard."""
    office = browser(served, "office")
    with clock_at(DAY):
        page = office.get("/units/130800")
    assert page.status_code == 200
    assert f'href="/units/{COUNTY}"' in page.text and 'href="/dashboard"' in page.text and "宽城满族自治县" in page.text


def test_the_applicant_is_never_offered_the_verdict(served):
    """A county official who applied for a township is offered no accept or reject on it; an inspector is."""
    chief = browser(served, "chief_yuerya")
    start(served, chief)
    record_checklist(served.db, YUERYA, {"provincial_demo"}, actor="chief_yuerya", now=at(DAY))
    li = browser(served, "li")
    with clock_at(DAY):
        page = li.get(f"/units/{YUERYA}")
        r = post(li, f"/units/{YUERYA}", page.text, {"trigger": "apply", "note": ""})
        assert r.status_code == 303
        mine = li.get(f"/units/{YUERYA}")
    assert mine.status_code == 200 and "已申请验收" in mine.text
    assert 'value="accept"' not in mine.text and 'value="reject"' not in mine.text
    judged = {t["name"]: t["permitted"] for t in show_as(served, "inspector")["triggers"]}
    assert judged["accept"] and judged["reject"] and not judged["apply"]
    assert not {t["name"]: t["permitted"] for t in show_as(served, "li")["triggers"]}["accept"]


def test_reasons_in_english_stand_beside_their_items_too(served):
    """In English the refusal's reasons end with the item code in plain brackets and still stand beside it."""
    chief = browser(served, "chief_yuerya")
    start(served, chief)
    with clock_at(DAY):
        page = chief.get(f"/units/{YUERYA}", headers={"Accept-Language": "en"})
        r = post(chief, f"/units/{YUERYA}", page.text, {"trigger": "apply", "note": ""})
        en = chief.post(f"/units/{YUERYA}", headers={"Accept-Language": "en"}, files={"_": ("", b"")},
                        data={"csrf_token": csrf_of(page.text), "trigger": "apply"})
    assert r.status_code == 409 and en.status_code == 409
    assert "(six.vehicle)" in item_block(en.text, "six.vehicle") and "Still missing" in en.text


def test_show_refuses_a_chief_another_township_and_says_what_each_official_may_do(chengde, cli, tmp_path):
    """`anjian show` refuses a chief another township (exit 4); its JSON says which triggers the official
    may fire, whether they may record the checklist, which cohorts they may designate, and each item's
    evidence."""
    import json

    r = cli("show", KUANCHENG_TOWN, user="chief_yuerya")
    assert r.exit_code == 4 and "管辖" in r.output
    proof = tmp_path / "车辆.pdf"
    proof.write_bytes(b"vehicle")
    assert cli("record", YUERYA, "six.vehicle=是", "--evidence", f"six.vehicle={proof}", user="chief_yuerya").exit_code == 0
    mine = json.loads(cli("show", YUERYA, "--format", "json", user="chief_yuerya").stdout)
    permitted = {t["name"]: t["permitted"] for t in mine["triggers"]}
    assert permitted == {"start": True, "apply": True, "accept": False, "reject": False, "resubmit": True, "revoke": False}
    assert [t["name"] for t in mine["triggers"] if t["next"]] == ["start"]
    assert mine["designable"] == [] and mine["recordable"] is True
    assert json.loads(cli("show", YUERYA, "--format", "json", user="inspector").stdout)["recordable"] is False
    assert mine["evidence"]["six.vehicle"][0]["sha256"] == hashlib.sha256(b"vehicle").hexdigest()
    county = json.loads(cli("show", COUNTY, "--format", "json", user="li").stdout)
    assert county["designable"] == ["county_demo", "heavy_task"]
    assert {t["name"]: t["permitted"] for t in county["triggers"]}["submit_plan"] is True


def show_as(served, official: str, unit: str = YUERYA) -> dict:
    """`show` as this official sees it."""
    from anjian.workflow.engine.authz import Actor
    from anjian.workflow.formats.output import to_jsonable
    from anjian.workflow.store.models import Official
    from anjian.workflow.views.show import show as compute

    with served.db.read() as session:
        o = session.get(Official, official)
        actor = Actor(o.name, o.role, o.unit_code)
    return to_jsonable(compute(served.db, unit, at(DAY), official, actor))
