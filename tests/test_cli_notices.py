"""`anjian remind` and `anjian notices`: one pass at `now` sends each recipient one message once, a dry run
sends and records nothing, days off send nothing, and the notices can be listed by unit and status."""

from __future__ import annotations

import email
import json
from email import policy

import pytest
from sqlalchemy import func, select
from support import PG, T0

from anjian.i18n import language
from anjian.notifications.netguard import Policy
from anjian.workflow.services import contacts
from anjian.workflow.store.models import Notice, NoticeItem

OVERDUE = "2014-12-31T08:30"  # plan_submission (2014-12-30) one day late for every county
MIXED = "2015-03-24T08:30"  # also provincial_demo (2015-03-31) seven days ahead: the d-7 reminder
KUANCHENG, YUERYA, CITY = "130827", "130827102", "130800"
SENT_KEYS = {"notice_id", "recipient", "channel", "units", "milestones", "kind"}


@pytest.fixture
def outbox(tmp_path, monkeypatch):
    """The file outbox of this test (ANJIAN_OUTBOX)."""
    folder = tmp_path / "outbox"
    monkeypatch.setenv("ANJIAN_OUTBOX", str(folder))
    return folder


@pytest.fixture
def reachable(chengde):
    """Chengde with e-mail contacts at 宽城县, at its township 峪耳崖镇 (a provincial demonstration) and the city office."""
    contacts.add(chengde, "宽城县", "李科长", "li@kc.gov.cn", None, "admin", T0)
    contacts.add(chengde, "宽城峪耳崖镇", "王站长", "wang@kc.gov.cn", None, "admin", T0)
    contacts.add(chengde, "承德市", "市安委办", "office@cd.gov.cn", None, "admin", T0)
    return chengde


def remind_json(cli, now: str, *extra: str) -> dict:
    r = cli("remind", "--format", "json", *extra, now=now)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def notices_json(cli, *args: str) -> list[dict]:
    r = cli("notices", "--format", "json", *args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def stored(db) -> tuple[int, int]:
    with db.read() as s:
        return (s.scalar(select(func.count()).select_from(Notice)), s.scalar(select(func.count()).select_from(NoticeItem)))


def files(outbox) -> list[str]:
    return sorted(p.name for p in outbox.iterdir()) if outbox.exists() else []


def test_remind_reports_what_it_sent_in_the_contract_shape(reachable, cli, outbox):
    """`remind --format json` gives {"sent": [{notice_id, recipient, channel, units, milestones, kind}], "skipped": [...]}."""
    data = remind_json(cli, MIXED)
    assert {"sent", "skipped"} <= set(data)
    assert all(set(s) >= SENT_KEYS for s in data["sent"])
    by_recipient = {s["recipient"]: s for s in data["sent"]}
    assert set(by_recipient) == {"li@kc.gov.cn", "wang@kc.gov.cn", "office@cd.gov.cn"}
    county = by_recipient["li@kc.gov.cn"]
    assert (county["channel"], county["units"], county["kind"]) == ("file", [KUANCHENG], "overdue")
    assert county["milestones"] == ["plan_submission", "provincial_demo"]
    town = by_recipient["wang@kc.gov.cn"]
    assert (town["units"], town["milestones"], town["kind"]) == ([YUERYA], ["provincial_demo"], "reminder")
    assert len(by_recipient["office@cd.gov.cn"]["units"]) == 12
    assert files(outbox) == sorted(f"{s['notice_id']}.eml" for s in data["sent"])


def test_remind_json_puts_one_entry_on_each_line(reachable, cli, outbox):
    """The JSON of a pass is the pass's result, an entry a line (a national pass lists tens of thousands),
    with names in Chinese as they are, not as \\u escapes."""
    r = cli("remind", "--format", "json", now=MIXED)
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    entries = [line.strip().rstrip(",") for line in r.output.splitlines() if line.startswith("    {")]
    assert [json.loads(e) for e in entries] == data["sent"] + data["skipped"]
    assert len(data["skipped"]) > 0 and "\\u" not in r.output
    assert any("无联系人" in json.dumps(s, ensure_ascii=False) or "no contact" in s.get("reason", "") for s in data["skipped"])
    empty = cli("remind", "--format", "json", now=MIXED)
    assert json.loads(empty.output)["sent"] == [] and '"sent": []' in empty.output


def test_remind_twice_at_the_same_time_sends_nothing_new(reachable, cli, outbox):
    """The second `remind` at the same --now exits 0, sends nothing, and writes no file or row."""
    first = remind_json(cli, OVERDUE)
    assert len(first["sent"]) == 2
    before = (files(outbox), stored(reachable))
    second = remind_json(cli, OVERDUE)
    assert second["sent"] == []
    assert (files(outbox), stored(reachable)) == before
    table = cli("remind", now=OVERDUE)
    assert table.exit_code == 0, table.output
    assert "li@kc.gov.cn" not in table.output
    assert (files(outbox), stored(reachable)) == before


def test_remind_table_lists_each_message(reachable, cli, outbox):
    """The table output names the day as a working day and lists each recipient with the kind and status in words."""
    r = cli("remind", now=OVERDUE)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("2014-12-31（工作日")
    for words in ("li@kc.gov.cn", "office@cd.gov.cn", "逾期通知", "已发送", "plan_submission"):
        assert words in r.output


def test_dry_run_plans_the_same_messages_and_writes_nothing(reachable, cli, outbox):
    """`--dry-run` lists the messages a real pass would send, under the same ids, but writes no file and no row."""
    planned = remind_json(cli, MIXED, "--dry-run")
    assert planned["dry_run"] is True
    assert {s["status"] for s in planned["sent"]} == {"planned"}
    assert stored(reachable) == (0, 0)
    assert not outbox.exists()
    text = cli("remind", "--dry-run", now=MIXED)
    assert text.exit_code == 0, text.output
    assert "试运行，未发送" in text.output and "将发送" in text.output
    assert stored(reachable) == (0, 0) and not outbox.exists()
    sent = remind_json(cli, MIXED)
    assert sorted((s["notice_id"], s["recipient"]) for s in sent["sent"]) == sorted(
        (s["notice_id"], s["recipient"]) for s in planned["sent"])


def test_unit_without_contact_is_reported_as_skipped(chengde, cli, outbox):
    """Units with something due but nobody to tell appear in "skipped" with the reason; the reachable one is sent."""
    contacts.add(chengde, "宽城县", "李科长", "li@kc.gov.cn", None, "admin", T0)
    data = remind_json(cli, OVERDUE)
    assert [s["recipient"] for s in data["sent"]] == ["li@kc.gov.cn"]
    no_contact = {s["unit"] for s in data["skipped"] if s.get("reason") == "no contact"}
    assert "130821" in no_contact and "130826" in no_contact and KUANCHENG not in no_contact
    assert len(no_contact) == 11
    escalations = [s for s in data["skipped"] if s.get("for_unit") == KUANCHENG]
    assert escalations and escalations[0]["unit"] == CITY
    assert "supervising unit" in escalations[0]["reason"]
    text = cli("remind", now=OVERDUE)
    assert text.exit_code == 0
    assert "无联系人、未能发送提醒的单位 11 个" in text.output and "130821" in text.output
    assert "未能接收逾期通报的上级单位 1 个：承德市（130800）" in text.output
    assert "承德县（130821）" in text.output  # by name and code, not by code alone


def test_remind_and_notices_name_the_units(reachable, cli, outbox):
    """The `remind` and `notices` tables list each notice's units by name with the code beside it (issue 13,
    point 9); the JSON keeps the codes."""
    text = cli("remind", now=OVERDUE)
    assert text.exit_code == 0, text.output
    assert "宽城满族自治县（130827）" in text.output
    table = cli("notices")
    assert table.exit_code == 0, table.output
    assert "宽城满族自治县（130827）" in table.output
    assert all(KUANCHENG in n["units"] or n["units"] for n in notices_json(cli))
    with language("en"):
        english = cli("notices")
    assert "宽城满族自治县 (130827)" in english.output and "Recipient" in english.output


@pytest.mark.parametrize(("now", "why"), [
    ("2015-02-24T08:30", "Spring Festival holiday on a Tuesday"),
    ("2015-02-21T08:30", "Spring Festival holiday on a Saturday"),
    ("2015-01-11T08:30", "an ordinary Sunday"),
])
def test_day_off_sends_nothing_and_says_so(reachable, cli, outbox, now, why):
    """On a day off (a holiday or a weekend) `remind` sends nothing, says the day is not a working day, and exits 0."""
    data = remind_json(cli, now)
    assert data["workday"] is False, why
    assert data["sent"] == []
    assert any("不是工作日" in s.get("reason", "") for s in data["skipped"])
    text = cli("remind", now=now)
    assert text.exit_code == 0
    assert "非工作日" in text.output and "不是工作日" in text.output
    assert stored(reachable) == (0, 0) and not outbox.exists()


def test_make_up_working_sunday_sends(reachable, cli, outbox):
    """2015-01-04 is a Sunday but an official make-up working day: the overdue notices go out."""
    data = remind_json(cli, "2015-01-04T08:30")
    assert data["workday"] is True
    assert {s["recipient"] for s in data["sent"]} == {"li@kc.gov.cn", "office@cd.gov.cn"}


def test_notices_lists_what_was_sent_with_status(reachable, cli, outbox):
    """`notices` lists each message with recipient, channel, kind, status, attempts, units and milestones."""
    remind_json(cli, OVERDUE)
    rows = notices_json(cli)
    assert {(n["recipient"], n["channel"], n["kind"], n["status"], n["attempts"]) for n in rows} == {
        ("li@kc.gov.cn", "file", "overdue", "sent", 1), ("office@cd.gov.cn", "file", "overdue", "sent", 1)}
    assert all(n["sent_at"] and n["subject"].startswith("【逾期通知】") for n in rows)
    table = cli("notices")
    assert table.exit_code == 0, table.output
    assert "已发送" in table.output and "li@kc.gov.cn" in table.output and "共 2 条" in table.output
    assert "2014-12-31 08:30:00" in table.output  # shown in Shanghai time
    csv = cli("notices", "--format", "csv")
    assert csv.exit_code == 0 and csv.output.count("li@kc.gov.cn") == 1


def test_notices_filtered_by_unit(reachable, cli, outbox):
    """`--unit` keeps the messages that tell about that unit, whoever received them."""
    remind_json(cli, MIXED)
    assert {n["recipient"] for n in notices_json(cli, "--unit", "宽城县")} == {"li@kc.gov.cn", "office@cd.gov.cn"}
    assert {n["recipient"] for n in notices_json(cli, "--unit", "承德县")} == {"office@cd.gov.cn"}
    assert {n["recipient"] for n in notices_json(cli, "--unit", "宽城峪耳崖镇")} == {"wang@kc.gov.cn"}
    assert notices_json(cli, "--unit", "宽城镇") == []


def test_notices_filtered_by_status(chengde, cli, outbox, monkeypatch):
    """`--status` keeps the messages in that status: a robot that is down leaves its message in `retry`."""
    monkeypatch.setenv("ANJIAN_WEBHOOK_HOSTS", "127.0.0.1:9")  # nothing listens on the discard port
    contacts.add(chengde, "宽城县", "李科长", "li@kc.gov.cn", "http://127.0.0.1:9/down", "admin", T0,
                 hooks=Policy.of(["127.0.0.1:9"]))
    remind_json(cli, OVERDUE)
    assert [(n["channel"], n["status"]) for n in notices_json(cli, "--status", "sent")] == [("file", "sent")]
    retry = notices_json(cli, "--status", "retry")
    assert [(n["channel"], n["recipient"], n["attempts"]) for n in retry] == [("webhook", "http://127.0.0.1:9/down", 1)]
    assert retry[0]["last_error"]
    assert notices_json(cli, "--status", "failed") == []
    table = cli("notices", "--status", "retry")
    assert table.exit_code == 0 and "待重试" in table.output and "li@kc.gov.cn" not in table.output


@pytest.mark.parametrize(("args", "words"), [
    (("--unit", "不存在县"), "名录中没有这个单位"),
    (("--status", "lost"), "lost"),
])
def test_notices_bad_filter_is_bad_input(chengde, cli, args, words):
    """An unknown unit or status exits 2 and names it."""
    r = cli("notices", *args)
    assert r.exit_code == 2
    assert words in r.output


def test_outbox_defaults_beside_the_database(chengde, cli, tmp_path, monkeypatch):
    """Without ANJIAN_OUTBOX the files go to outbox/ beside the SQLite file (under ANJIAN_HOME for a server database)."""
    monkeypatch.delenv("ANJIAN_OUTBOX", raising=False)
    contacts.add(chengde, "宽城县", "李科长", "li@kc.gov.cn", None, "admin", T0)
    (sent,) = remind_json(cli, OVERDUE)["sent"]
    folder = tmp_path / "home" / "outbox" if PG else tmp_path / "outbox"
    assert files(folder) == [f"{sent['notice_id']}.eml"]


def test_language_setting_sends_english(chengde, cli, outbox, monkeypatch):
    """ANJIAN_LANGUAGE=en renders the notices in English."""
    monkeypatch.setenv("ANJIAN_LANGUAGE", "en")
    contacts.add(chengde, "宽城县", "Li", "li@kc.gov.cn", None, "admin", T0)
    (sent,) = remind_json(cli, OVERDUE)["sent"]
    msg = email.message_from_bytes((outbox / f"{sent['notice_id']}.eml").read_bytes(), policy=policy.default)
    assert msg["Subject"].startswith("[Overdue] ")
    assert "1 day(s) late" in msg.get_body(("plain",)).get_content()


def test_config_file_sets_language_and_sender(chengde, cli, outbox, tmp_path):
    """<ANJIAN_HOME>/config.toml sets the language and the sender of the messages."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text('[notify]\nlanguage = "en"\nsender = "Office <office@cd.gov.cn>"\n', encoding="utf-8")
    contacts.add(chengde, "宽城县", "Li", "li@kc.gov.cn", None, "admin", T0)
    (sent,) = remind_json(cli, OVERDUE)["sent"]
    msg = email.message_from_bytes((outbox / f"{sent['notice_id']}.eml").read_bytes(), policy=policy.default)
    assert msg["From"] == "Office <office@cd.gov.cn>"
    assert msg["Subject"].startswith("[Overdue] ")


@pytest.mark.parametrize(("var", "value", "words"), [
    ("ANJIAN_CHANNEL", "pigeon", "设置 channel 须是 file, smtp 之一"),
    ("ANJIAN_LANGUAGE", "fr", "设置 language 须是 zh, en 之一"),
    ("ANJIAN_SMTP_PORT", "twenty-five", "设置 smtp_port 须是数字"),
    ("ANJIAN_SMTP_SECURITY", "ssl", "设置 smtp_security 须是 none, starttls, tls 之一"),
])
def test_bad_notification_setting_is_bad_input(reachable, cli, outbox, monkeypatch, var, value, words):
    """A bad notification setting exits 2 naming it, before anything is claimed or sent."""
    monkeypatch.setenv(var, value)
    r = cli("remind", now=OVERDUE)
    assert r.exit_code == 2
    assert words in r.output
    assert stored(reachable) == (0, 0) and not outbox.exists()


def test_a_leftover_notice_is_taken_over_by_one_pass_only(chengde, cli, outbox):
    """Two passes that both see a notice waiting for retry: exactly one takes it over and sends it."""
    from sqlalchemy import update as sql_update

    from anjian.workflow.reminders.leftovers import take_over as _take_over
    from anjian.workflow.store.models import Notice

    contacts.add(chengde, "宽城县", "李科长", "li@kc.gov.cn", None, "admin", T0)
    sent = remind_json(cli, OVERDUE)["sent"]
    nid = sent[0]["notice_id"]
    with chengde.write() as session:
        session.execute(sql_update(Notice).where(Notice.id == nid).values(status="retry", owner="elsewhere:1"))
    assert _take_over(chengde, nid, "retry", "elsewhere:1") is True
    assert _take_over(chengde, nid, "retry", "elsewhere:1") is False


def test_robot_messages_are_cut_to_the_robots_limit():
    """A group-robot message longer than the limit is cut at a line, saying how many items were left out."""
    from anjian.notifications.channels.webhook import WEBHOOK_LIMIT, fit_markdown

    items = [f"> 承德市某县某乡镇{n}：重点乡镇全部达到规范化水平（期限 2015年12月31日，已逾期 {n} 天）" for n in range(200)]
    text = "\n".join(["### 通知", "**承德市安委办**：截至2016年1月4日，", *items, "—— 承德市安全生产委员会办公室（编号 x）"]) + "\n"
    cut = fit_markdown(text, WEBHOOK_LIMIT)
    assert len(cut.encode("utf-8")) <= WEBHOOK_LIMIT
    kept = sum(1 for line in cut.splitlines() if line.startswith("> 承德市"))
    assert f"另有 {200 - kept} 项未列出" in cut
    assert cut.rstrip().endswith("（编号 x）")
    assert fit_markdown("short\n", WEBHOOK_LIMIT) == "short\n"


@pytest.mark.parametrize("chunk", ["1", "2"])
def test_a_pass_in_small_chunks_sends_what_one_chunk_sends(reachable, cli, outbox, monkeypatch, chunk):
    """With ANJIAN_REMIND_CHUNK=1 or 2 (three notices in three or two chunks, each claimed, written and marked
    on its own, the outbox by the writer process) the pass sends exactly the notices the dry run plans,
    each once; the next pass sends nothing."""
    planned = remind_json(cli, MIXED, "--dry-run")["sent"]
    monkeypatch.setenv("ANJIAN_REMIND_CHUNK", chunk)
    sent = remind_json(cli, MIXED)["sent"]
    assert sorted((s["notice_id"], s["recipient"]) for s in sent) == sorted((s["notice_id"], s["recipient"]) for s in planned)
    assert files(outbox) == sorted(f"{s['notice_id']}.eml" for s in planned)
    assert {(n["status"], n["attempts"]) for n in notices_json(cli)} == {("sent", 1)}
    assert stored(reachable)[0] == len(planned) == 3
    assert remind_json(cli, MIXED)["sent"] == []


@pytest.mark.parametrize("value", ["0", "-5", "many", "1.5"])
def test_a_bad_chunk_size_is_bad_input(reachable, cli, outbox, monkeypatch, value):
    """ANJIAN_REMIND_CHUNK that is not a whole number of at least 1 exits 2 naming it, before anything is claimed."""
    monkeypatch.setenv("ANJIAN_REMIND_CHUNK", value)
    r = cli("remind", now=OVERDUE)
    assert r.exit_code == 2
    assert "ANJIAN_REMIND_CHUNK" in r.output and repr(value) in r.output
    assert stored(reachable) == (0, 0) and not outbox.exists()


def eml_text(path) -> tuple[str, str, str]:
    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    return str(msg["Subject"]), msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


def test_a_notice_stores_what_it_says_and_its_file_is_rendered_from_that(reachable, cli, outbox, monkeypatch):
    """A claimed notice stores its content (a few hundred bytes of JSON), not its rendered text; its file,
    written by the outbox writer (chunks of one), says what the templates make of that content."""
    from anjian.notifications.render import parts_of
    from anjian.workflow.store.models import NoticeContent

    monkeypatch.setenv("ANJIAN_REMIND_CHUNK", "1")
    sent = remind_json(cli, MIXED)["sent"]
    with reachable.read() as s:
        rows = {r.notice_id: r for r in s.scalars(select(NoticeContent))}
        subjects = dict(s.execute(select(Notice.id, Notice.subject)).all())
    assert set(rows) == {x["notice_id"] for x in sent}
    for nid, row in rows.items():
        assert row.body is None and row.html is None
        assert len(row.content.encode()) < 400 + 200 * len(json.loads(row.content)["lines"])  # the city office's lists 17
        parts = parts_of(row.content, ("subject", "text", "html"))
        subject, text, html = eml_text(outbox / f"{nid}.eml")
        assert (subject, text, html) == (subjects[nid], parts["text"], parts["html"]) and parts["subject"] == subject
        assert "峪耳崖镇" in text or "宽城" in text


def test_a_notice_claimed_before_schema_0004_goes_out_as_it_was_stored(reachable, cli, outbox):
    """A notice left claimed by a pass before notices stored their content has its rendered text and HTML
    kept (notice_contents.body, .html): the next pass writes its file with exactly those."""
    from sqlalchemy import update as sql_update

    from anjian.workflow.store.models import NoticeContent

    sent = remind_json(cli, OVERDUE)["sent"]
    nid = sent[0]["notice_id"]
    (outbox / f"{nid}.eml").unlink()
    with reachable.write() as session:
        session.execute(sql_update(Notice).where(Notice.id == nid).values(status="claimed", owner="gone-host:1",
                                                                       created_at="2014-12-31T00:30:00.000000Z"))
        session.execute(sql_update(NoticeContent).where(NoticeContent.notice_id == nid)
                        .values(content=None, body="旧版正文：请按期完成。", html="<p>旧版正文</p>"))
    again = remind_json(cli, "2014-12-31T10:30")
    assert [s["notice_id"] for s in again["sent"]] == [nid]
    _, text, html = eml_text(outbox / f"{nid}.eml")
    assert text.strip() == "旧版正文：请按期完成。" and html.strip() == "<p>旧版正文</p>"


def test_a_template_that_cannot_render_fails_the_pass_before_anything_is_claimed(reachable, outbox, monkeypatch):
    """The first notice of each channel is rendered whole before a chunk is claimed: a template that
    fails fails the pass with nothing claimed and nothing written (the next pass sends it all)."""
    import datetime as dt

    from jinja2.exceptions import UndefinedError

    import anjian.workflow.reminders.run as reminders
    from anjian.workflow.clock import SHANGHAI
    from anjian.workflow.settings import NotifySettings

    def broken(stored, parts):
        raise UndefinedError("'overdue' is undefined")

    import anjian.notifications.render as render

    monkeypatch.setattr(render, "parts_of", broken)
    now = dt.datetime(2015, 3, 24, 8, 30, tzinfo=SHANGHAI)
    with pytest.raises(UndefinedError):
        reminders.run_pass(reachable, now, NotifySettings(), outbox)
    assert stored(reachable) == (0, 0) and not outbox.exists()
    monkeypatch.undo()
    assert len(reminders.run_pass(reachable, now, NotifySettings(), outbox).sent) == 3


def test_a_notice_a_peer_claimed_meanwhile_is_dropped_and_the_rest_claimed(reachable, outbox):
    """Between a pass's plan and its claim, a peer claims one of its notices: the whole chunk, inserted at
    once, is refused by the items' key, and then that notice alone is dropped — the others are claimed
    in the same transaction, nothing is claimed twice."""
    import datetime as dt

    from anjian.workflow.clock import SHANGHAI
    from anjian.workflow.reminders import claim, recipients
    from anjian.workflow.reminders.workdays import load_office_calendar
    from anjian.workflow.services.registry import campaign_in_force
    from anjian.workflow.settings import NotifySettings

    now = dt.datetime(2015, 3, 24, 8, 30, tzinfo=SHANGHAI)
    settings = NotifySettings()
    with reachable.read() as s:
        plans, _ = recipients.plan(s, now, load_office_calendar(s), settings)
        campaign = campaign_in_force(s)
    assert len(plans) == 3
    mine = claim.stage_chunk(now, now.date(), plans, campaign, settings)
    peers = claim.stage_chunk(now, now.date(), plans[1:2], campaign, settings)
    assert [r.id for r in claim.claim_staged(reachable, peers)] == [peers[0].ready.id]
    won = claim.claim_staged(reachable, mine)
    assert sorted(r.id for r in won) == sorted(s.ready.id for i, s in enumerate(mine) if i != 1)
    assert stored(reachable)[0] == 3
