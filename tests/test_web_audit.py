"""`/history` (审计记录): the audit log filtered by unit, official, action and time, newest first a page at a
time, each row with its evidence's SHA-256 and its hash; `audit verify`'s verdict; the latest signed
checkpoint and the public key to download and verify offline."""

from __future__ import annotations

import hashlib
import json
import re
from html import unescape

from sqlalchemy import select, text
from support import at, clock_at, drop_audit_guards, record_checklist
from support_web import browser, csrf_of

from anjian.workflow.services.advance import advance
from anjian.workflow.services.checklist import record
from anjian.workflow.store.models import AuditRow

KUANCHENG, YUERYA, GAOSITAI = "130827", "130827102", "130821106"
PLAN = b"%PDF-1.4 kuancheng plan"


def signed_in(served, official: str, when: str):
    with clock_at(when):
        return browser(served, official)


def busy(served, folder) -> None:
    """宽城's plan with its evidence (2014-12-20), 峪耳崖镇 started and applied, rejected by wang on 2015-01-10,
    resubmitted and accepted on 2015-02-01; 高寺台镇 started by office on 2015-02-02, its checklist filled."""
    db = served.db
    plan = folder / "宽城推进方案.pdf"
    plan.write_bytes(PLAN)
    steps = [
        ("2014-12-20T09:00", lambda t: record(db, KUANCHENG, "county.leadership_group", "组长 张三", "li", t)),
        ("2014-12-20T10:00", lambda t: advance(db, KUANCHENG, "submit_plan", "li", t, evidence=(str(plan),))),
        ("2014-12-22T09:00", lambda t: advance(db, YUERYA, "start", "chief_yuerya", t)),
        ("2014-12-22T09:30", lambda t: record_checklist(db, YUERYA, frozenset({"provincial_demo"}),
                                                        actor="chief_yuerya", now=t)),
        ("2015-01-05T09:00", lambda t: advance(db, YUERYA, "apply", "chief_yuerya", t, note="申请验收")),
        ("2015-01-10T09:00", lambda t: advance(db, YUERYA, "reject", "wang", t, note="台账不全")),
        ("2015-01-20T09:00", lambda t: advance(db, YUERYA, "resubmit", "chief_yuerya", t)),
        ("2015-02-01T07:00", lambda t: advance(db, YUERYA, "accept", "wang", t, note="合格")),
        ("2015-02-02T09:00", lambda t: advance(db, GAOSITAI, "start", "office", t)),
        ("2015-02-02T09:30", lambda t: record_checklist(db, GAOSITAI, actor="office", now=t)),
    ]
    for when, step in steps:
        with clock_at(when):
            step(at(when))


def seqs(html: str) -> list[int]:
    return [int(s) for s in re.findall(r'<tr data-seq="(\d+)"', html)]


def actions(html: str) -> list[str]:
    return re.findall(r'<tr data-seq="\d+" data-action="(\w+)"', html)


def db_rows(db) -> list[AuditRow]:
    with db.read() as s:
        return list(s.scalars(select(AuditRow).order_by(AuditRow.seq)))


def test_rows_come_newest_first_with_names_hashes_and_evidence(served, tmp_path):
    """Unfiltered, the newest rows come first; a transition shows its states in Chinese, its note, the
    evidence file's name and SHA-256, and the row's hash as the log stores it."""
    busy(served, tmp_path)
    office = signed_in(served, "office", "2015-02-03T09:00")
    with clock_at("2015-02-03T09:00"):
        page = office.get(f"/history?unit={KUANCHENG}&action=submit_plan")
    assert page.status_code == 200, page.text
    assert "审计记录" in page.text
    (seq,) = seqs(page.text)
    row = page.text.split(f'<tr data-seq="{seq}"')[1].split("</tr>")[0]
    assert "报送推进方案" in row and "准备发动 → 示范创建" in row and "附件 1" in row
    assert "宽城推进方案.pdf" in row and hashlib.sha256(PLAN).hexdigest() in row
    stored = next(r for r in db_rows(served.db) if r.seq == seq)
    assert f'<span class="sha">{stored.hash}</span>' in row and stored.prev_hash in row
    assert 'href="/units/130827"' in row and "2014-12-20<br>10:00:00" in row
    with clock_at("2015-02-03T09:00"):
        everything = office.get("/history")
    shown = seqs(everything.text)
    assert shown == sorted(shown, reverse=True) and shown[0] == db_rows(served.db)[-1].seq


def test_filters_by_unit_actor_action_and_time(served, tmp_path):
    """Each filter narrows the rows as `history` does: the unit, the official, the action, the dates
    (the day given as `until` included), and all of them together."""
    busy(served, tmp_path)
    office = signed_in(served, "office", "2015-02-03T09:00")
    with clock_at("2015-02-03T09:00"):
        def get(query: str) -> str:
            r = office.get("/history?" + query)
            assert r.status_code == 200, r.text
            return r.text

        moves = [a for a in actions(get(f"unit={YUERYA}")) if a != "record"]
        assert moves == ["accept", "resubmit", "reject", "apply", "start"]
        assert actions(get("actor=wang")) == ["accept", "reject"]
        assert actions(get("action=accept")) == ["accept"]
        assert actions(get("action=reject&since=2015-01-10&until=2015-01-10")) == ["reject"]
        assert actions(get("action=reject&until=2015-01-09")) == []
        assert [a for a in actions(get("since=2015-02-01&until=2015-02-02")) if a != "record"] == ["start", "accept"]
        assert actions(get("since=2015-02-03")) == ["signin", "password_change", "password_set"]
        both = get(f"unit={YUERYA}&actor=chief_yuerya&since=2015-01-06")
        assert actions(both) == ["resubmit"]
        assert 'value="chief_yuerya"' in both and '<option value="accept">验收通过</option>' in both
        county = actions(get(f"unit={KUANCHENG}&children=1&action=start"))
        assert county == ["start"]  # 峪耳崖镇's, not 高寺台镇's (another county)
        assert 'id="no-rows"' in get("actor=nobody")


def test_a_bad_filter_is_refused_with_the_commands_words(served):
    """An unknown unit or a date that is none answers 400 with what `history` says, the form kept."""
    office = signed_in(served, "office", "2015-02-03T09:00")
    with clock_at("2015-02-03T09:00"):
        r = office.get("/history?unit=不存在镇")
        assert r.status_code == 400 and "不存在镇" in r.text and 'value="不存在镇"' in r.text
        r = office.get("/history?since=2015-02-30")
        assert r.status_code == 400 and "2015-02-30" in r.text


def test_pages_of_a_hundred_rows(served, tmp_path):
    """The log is read a hundred rows a page, newest first; the older page goes on where the first stopped."""
    busy(served, tmp_path)
    total = len(db_rows(served.db))
    assert total > 100
    office = signed_in(served, "office", "2015-02-03T09:00")
    with clock_at("2015-02-03T09:00"):
        first = office.get("/history")
        assert len(seqs(first.text)) == 100 and 'rel="prev"' not in first.text
        older = re.search(r'<a href="([^"]+)" rel="next">', first.text).group(1)
        second = office.get(unescape(older))
    total = len(db_rows(served.db))  # signing in wrote rows too
    assert seqs(second.text)[0] == seqs(first.text)[-1] - 1
    assert len(seqs(first.text)) + len(seqs(second.text)) == min(total, 200)
    assert 'rel="prev"' in second.text


def test_verify_says_intact_and_names_the_first_bad_row(served, tmp_path):
    """The page shows `audit verify`: intact with the row count; after a row is edited behind the
    application's back, failed (exit 6) naming that row."""
    busy(served, tmp_path)
    office = signed_in(served, "office", "2015-02-03T09:00")
    with clock_at("2015-02-03T09:00"):
        page = office.get("/history")
    verdict = page.text.split('id="verdict"')[1].split("</div>")[0]
    assert verdict.startswith(' class="ok" role="status"')
    assert f"审计日志完整：{len(db_rows(served.db))} 条记录" in verdict
    drop_audit_guards(served.db)
    with served.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET note = '合格（改）' WHERE action = 'accept'"))
    bad = next(r.seq for r in db_rows(served.db) if r.action == "accept")
    with clock_at("2015-02-03T09:05"):
        page = office.get("/history")
    verdict = page.text.split('id="verdict"')[1].split("</div>")[0]
    assert verdict.startswith(' class="error" role="alert"') and "核验未通过（退出码 6）" in verdict
    assert f"审计记录第 {bad} 条" in verdict


def test_checkpoint_written_downloaded_and_verified_offline(served, tmp_path, cli):
    """The city office writes a signed checkpoint from the page; anyone downloads it and the public key,
    and `anjian audit verify --checkpoint F --public-key K` agrees with it (no private key needed)."""
    busy(served, tmp_path)
    office = signed_in(served, "office", "2015-02-03T09:00")
    with clock_at("2015-02-03T09:00"):
        page = office.get("/history")
        assert "尚未写出签名检查点" in page.text and 'href="/history/checkpoint.json"' not in page.text
        r = office.post("/history/checkpoint", data={"csrf_token": csrf_of(page.text)})
        assert r.status_code == 303 and r.headers["location"] == "/history?done=checkpoint"
        page = office.get(r.headers["location"])
    assert 'href="/history/checkpoint.json"' in page.text and 'href="/history/public-key.pem"' in page.text
    command = unescape(page.text.split('id="offline-command"')[1].split("</pre>")[0])
    chief = signed_in(served, "chief_yuerya", "2015-02-03T09:10")
    with clock_at("2015-02-03T09:10"):
        cp = chief.get("/history/checkpoint.json")
        key = chief.get("/history/public-key.pem")
    assert cp.status_code == 200 and cp.headers["content-type"].startswith("application/json")
    assert "attachment" in cp.headers["content-disposition"]
    data = json.loads(cp.content)
    assert data["anjian_checkpoint"] == 1 and data["seq"] > 100
    key_name = re.search(r"filename\*=UTF-8''(.+)$", key.headers["content-disposition"]).group(1)
    assert f"anjian audit verify --checkpoint checkpoint-{data['seq']}.json --public-key {key_name}" in command
    assert key.status_code == 200 and key.content.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert b"PRIVATE" not in key.content
    offline = tmp_path / "offline"
    offline.mkdir()
    (offline / "checkpoint.json").write_bytes(cp.content)
    (offline / "audit.pub").write_bytes(key.content)
    r = cli("audit", "verify", "--checkpoint", str(offline / "checkpoint.json"), "--public-key",
            str(offline / "audit.pub"), now="2015-02-03T09:20")
    assert r.exit_code == 0, r.output
    assert f"与签名检查点 #{data['seq']} 一致" in r.output


def test_only_whom_the_command_allows_writes_a_checkpoint(served):
    """An inspector is not offered the button; posting anyway is refused with 403 by the command, nothing
    written; without the form's token the post is refused too."""
    inspector = signed_in(served, "wang", "2015-02-03T09:00")
    before = len(db_rows(served.db))
    with clock_at("2015-02-03T09:00"):
        page = inspector.get("/history")
        assert 'action="/history/checkpoint"' not in page.text
        r = inspector.post("/history/checkpoint", data={"csrf_token": csrf_of(page.text)})
        assert r.status_code == 403 and "city_office" in r.text
        assert inspector.post("/history/checkpoint", data={}).status_code == 403
        assert inspector.get("/history/checkpoint.json").status_code == 404
    assert [r.action for r in db_rows(served.db)[before:]] == ["denied"]


def test_a_chief_sees_only_their_own_township_s_history(served, tmp_path, cli):
    """A station chief reads the log of their own township only, on the page as on a terminal: another
    township is refused (403 / exit 4, the refusal audited), and the whole log shows their rows alone."""
    busy(served, tmp_path)
    chief = signed_in(served, "chief_yuerya", "2015-02-03T09:00")
    with clock_at("2015-02-03T09:00"):
        assert chief.get(f"/history?unit={GAOSITAI}").status_code == 403
        page = chief.get("/history")
    assert page.status_code == 200
    r = cli("history", GAOSITAI, "--format", "json", user="chief_yuerya", now="2015-02-03T09:00")
    assert r.exit_code == 4, r.output
    r = cli("history", "--format", "json", user="chief_yuerya", now="2015-02-03T09:00")
    assert r.exit_code == 0, r.output
    mine = json.loads(r.stdout)
    assert mine and {h["unit"] for h in mine} == {"130827102"}
    assert seqs(page.text) == [h["seq"] for h in reversed(mine)][:len(seqs(page.text))]


def test_history_s_new_filters_on_a_terminal(served, tmp_path, cli):
    """What the page asks `history` for works on a terminal too: --action by id or Chinese name, --until a
    whole day, newest first a page at a time (--rows, --skip), and each JSON row's hash chained to the
    one before it."""
    busy(served, tmp_path)

    def rows(*args: str) -> list[dict]:
        r = cli("history", *args, "--format", "json", now="2015-02-03T09:00")
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)

    assert [h["trigger"] for h in rows("--action", "验收不通过")] == ["reject"]
    assert [h["trigger"] for h in rows("--action", "accept", "--action", "reject")] == ["reject", "accept"]
    assert [h["trigger"] for h in rows("--action", "reject", "--until", "2015-01-10")] == ["reject"]
    assert rows("--action", "reject", "--until", "2015-01-10T08:59") == []
    everything = rows()
    page = rows("--newest-first", "--rows", "5", "--skip", "5")
    assert [h["seq"] for h in page] == [h["seq"] for h in reversed(everything)][5:10]
    for before, after in zip(everything, everything[1:], strict=False):
        assert after["prev_hash"] == before["hash"]
    assert everything[0]["action_name"] == "载入区划" and everything[0]["prev_hash"] == "0" * 64
    r = cli("history", "--action", "approve", now="2015-02-03T09:00")
    assert r.exit_code == 2 and "--action" in r.output and "accept（验收通过）" in r.output
