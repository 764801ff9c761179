"""The inspection queue (/queue): the applied townships of an official's jurisdiction, the longest waiting
first, each with a form to accept or reject it with an opinion, through `advance` as the official."""

from __future__ import annotations

import json

import pytest
from support import at, clock_at, record_checklist, snapshot
from support_web import browser, csrf_of

from anjian.workflow.services.advance import advance

YUERYA = "130827102"  # 峪耳崖镇, a provincial demonstration township of 宽城
KUANCHENG = "130827100"  # 宽城镇
LONGXUMEN = "130827101"  # 龙须门镇
LATER = "2015-01-10T09:00"  # when the officials look at the queue


def applies(db, code: str, actor: str, when: str, cohorts=()) -> None:
    """A township started, its checklist completed and its application made at `when`, by `actor`."""
    advance(db, code, "start", actor, at(when))
    record_checklist(db, code, cohorts, actor=actor, now=at(when))
    advance(db, code, "apply", actor, at(when))


@pytest.fixture
def applied(served):
    """宽城镇 applied on 5 January (by the county official li), 峪耳崖镇 on 6 January (by its chief)."""
    applies(served.db, KUANCHENG, "li", "2015-01-05T09:00")
    applies(served.db, YUERYA, "chief_yuerya", "2015-01-06T10:30", {"provincial_demo"})
    return served


def written(db) -> dict:
    """Every table but `tokens`, whose sessions note their last use on any request: what a refused form
    must leave as it was."""
    state = snapshot(db)
    state.pop("tokens", None)
    return state


def state_of(cli, code: str) -> str:
    r = cli("show", code, "--format", "json", now=None)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["state"]


def post(client, code: str, trigger: str, note: str, **extra):
    page = client.get("/queue")
    fields = {"unit": code, "trigger": trigger, "note": note, "csrf_token": csrf_of(page.text), **extra}
    return client.post("/queue", data=fields)


def test_units_json_says_when_and_by_whom_a_township_applied(applied, cli):
    """`units --state applied --format json` gives each township's `since`, `applicant` and `version`."""
    r = cli("units", "--state", "applied", "--format", "json", now=LATER)
    assert r.exit_code == 0, r.output
    rows = {u["code"]: u for u in json.loads(r.stdout)}
    assert set(rows) == {KUANCHENG, YUERYA}
    assert rows[KUANCHENG]["since"].startswith("2015-01-05T01:00") and rows[KUANCHENG]["applicant"] == "li"
    assert rows[YUERYA]["since"].startswith("2015-01-06T02:30") and rows[YUERYA]["applicants"] == ["chief_yuerya"]
    assert rows[YUERYA]["parent_name"] == "宽城满族自治县" and rows[YUERYA]["version"] > 1
    untouched = json.loads(cli("units", "--county", "宽城县", "--level", "township", "--format", "json",
                               now=LATER).stdout)
    assert all(u["since"] is None for u in untouched if u["state"] == "not_started")


def test_queue_lists_applied_townships_oldest_first(applied):
    """An inspector's queue lists 宽城镇 (applied first) above 峪耳崖镇, with county, time, applicant and forms."""
    with clock_at(LATER):
        page = browser(applied, "wang").get("/queue")
    assert page.status_code == 200
    text = page.text
    assert "验收队列" in text and "2 个乡镇等待验收结论" in text
    assert text.index(f'id="q-{KUANCHENG}"') < text.index(f'id="q-{YUERYA}"')
    assert "2015-01-05 09:00" in text and "2015-01-06 10:30" in text and "宽城满族自治县" in text
    assert "chief_yuerya" in text and "省示范" in text
    assert text.count('name="trigger" value="accept"') == 2 and text.count('name="trigger" value="reject"') == 2
    assert f'href="/units/{YUERYA}"' in text and f'href="/queue/dossier/{YUERYA}"' in text


def test_accept_without_an_opinion_is_refused_and_nothing_written(applied):
    """Accepting with an empty opinion re-renders the queue with the message; the service is not called."""
    with clock_at(LATER):
        wang = browser(applied, "wang")
        csrf = csrf_of(wang.get("/queue").text)
        before = written(applied.db)
        r = wang.post("/queue", data={"unit": YUERYA, "trigger": "accept", "note": "  ", "csrf_token": csrf})
    assert r.status_code == 400
    assert "必须填写意见" in r.text and "未写入任何内容" in r.text
    assert f'id="q-{YUERYA}"' in r.text  # the queue is shown again, the township still in it
    assert written(applied.db) == before


def test_reject_with_an_opinion_sends_the_township_to_rectifying(applied, cli):
    """A rejection with its reason moves 峪耳崖镇 to rectifying and the queue names it in Chinese."""
    with clock_at(LATER):
        wang = browser(applied, "wang")
        r = post(wang, YUERYA, "reject", "应急预案未演练，台账不全")
        assert r.status_code == 303 and r.headers["location"] == f"/queue?done=reject&unit={YUERYA}"
        page = wang.get(r.headers["location"])
    assert page.status_code == 200
    assert "承德市宽城满族自治县峪耳崖镇：“验收不通过”已完成，现为“整改中”" in page.text
    assert f'id="q-{YUERYA}"' not in page.text and f'id="q-{KUANCHENG}"' in page.text
    assert state_of(cli, YUERYA) == "rectifying"
    rows = json.loads(cli("history", YUERYA, "--format", "json", now=None).stdout)
    assert (rows[-1]["trigger"], rows[-1]["actor"], rows[-1]["note"]) == ("reject", "wang", "应急预案未演练，台账不全")


def test_accept_with_an_opinion_and_the_page_s_version(applied, cli):
    """Accepting with an opinion passes the version the page showed; a stale version is a conflict (409)."""
    with clock_at(LATER):
        wang = browser(applied, "wang")
        r = post(wang, KUANCHENG, "accept", "资料齐全，现场核查合格", version="1")
        assert r.status_code == 409 and "版本" in r.text
        assert state_of(cli, KUANCHENG) == "applied"
        page = wang.get("/queue")
        version = page.text.split(f'id="q-{KUANCHENG}"')[1].split('name="version" value="')[1].split('"')[0]
        r = wang.post("/queue", data={"unit": KUANCHENG, "trigger": "accept", "note": "资料齐全，现场核查合格",
                                      "version": version, "csrf_token": csrf_of(page.text)})
    assert r.status_code == 303, r.text
    assert state_of(cli, KUANCHENG) == "accepted"


def test_the_applicant_cannot_accept_their_own_application(applied):
    """li applied for 宽城镇: the queue offers li no buttons for it, and a posted verdict is refused (403)."""
    from anjian.workflow.store.models import AuditRow

    with clock_at(LATER):
        li = browser(applied, "li")
        page = li.get("/queue")
        own = page.text.split(f'id="q-{KUANCHENG}"')[1].split("</li>")[0]
        assert "您提出了该乡镇的验收申请" in own and 'name="trigger"' not in own
        before = written(applied.db)
        with applied.db.read() as s:
            last = max(s.query(AuditRow.seq).all())[0]
        r = li.post("/queue", data={"unit": KUANCHENG, "trigger": "accept", "note": "同意",
                                    "csrf_token": csrf_of(page.text)})
    assert r.status_code == 403
    assert "申请人以外的人" in r.text and f'id="q-{KUANCHENG}"' in r.text
    after = written(applied.db)
    assert after["units"] == before["units"] and after["checklist_values"] == before["checklist_values"]
    with applied.db.read() as s:
        assert [a for (a,) in s.query(AuditRow.action).filter(AuditRow.seq > last)] == ["denied"]


def test_a_chief_gets_403_on_the_queue(applied):
    """A township's chief has no queue: GET and POST /queue answer 403 and write nothing."""
    with clock_at(LATER):
        chief = browser(applied, "chief_yuerya")
        r = chief.get("/queue")
        assert r.status_code == 403 and "验收队列仅供" in r.text
        csrf = csrf_of(chief.get("/").text)
        before = written(applied.db)
        r = chief.post("/queue", data={"unit": KUANCHENG, "trigger": "accept", "note": "同意", "csrf_token": csrf})
    assert r.status_code == 403
    assert written(applied.db) == before


def test_a_verdict_without_the_csrf_token_is_refused(applied):
    """A posted verdict without the session's CSRF token is refused (403) and writes nothing."""
    with clock_at(LATER):
        wang = browser(applied, "wang")
        before = written(applied.db)
        r = wang.post("/queue", data={"unit": YUERYA, "trigger": "reject", "note": "不合格"})
    assert r.status_code == 403 and "表单已过期" in r.text
    assert written(applied.db) == before


def test_the_city_office_follows_the_queue_without_buttons(applied):
    """The city office sees the applied townships but no verdict form (verdicts are the inspectors')."""
    with clock_at(LATER):
        page = browser(applied, "office").get("/queue")
    assert page.status_code == 200 and f'id="q-{YUERYA}"' in page.text
    assert 'name="trigger"' not in page.text and "验收结论由县区工作人员和市局验收人员给出" in page.text


def test_the_dossier_is_a_download_of_the_official_s_own(applied):
    """The dossier link writes `report dossier --format html` and redirects to its download."""
    with clock_at(LATER):
        wang = browser(applied, "wang")
        r = wang.get(f"/queue/dossier/{YUERYA}")
        assert r.status_code == 303 and r.headers["location"].startswith("/api/v1/downloads/")
        file = wang.get(r.headers["location"])
    assert file.status_code == 200 and "峪耳崖镇" in file.text and "<html" in file.text.lower()
