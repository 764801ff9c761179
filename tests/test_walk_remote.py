"""宽城's campaign walked twice, side by side: through the CLI as a client of `anjian serve` (the served
database), and through the embedded CLI on a twin database made the same way. Step by step the two print
the same stdout and stderr and exit with the same code.

The twin is initialized as the served database is and issues the same tokens, so the audit log's numbers
match. Embedded `--as OFFICIAL` would record the admin acting for the official (and say so in refusals:
"root（代 chief_yuerya 操作）"), so instead each acting official is linked on both databases to an OS
account of its own (`user edit --login os-NAME`, the same audit rows on both), and the embedded side runs
as that account (os_login patched): both sides act as the official itself, and every step, history
included, is compared byte for byte."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
from unittest import mock

import pytest
from click.testing import CliRunner
from support import T0, TEST_OFFICIALS, add_officials, at, clock_at, new_database_url, record_checklist

from anjian.workflow.store.db import Database

COUNTY = "宽城满族自治县"
CODE = "130827"
YUERYA = "宽城峪耳崖镇"
YUERYA_CODE = "130827102"
DEMOS = ["130827100", "130827101"]
KEYS = ["130827103", "130827104"]
HEAVY = "130827109"  # 松岭镇: heavy task
ACTING = ("county_official", "city_office", "chief_yuerya", "city_inspector")


@contextlib.contextmanager
def _cwd(folder):
    old = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


@pytest.fixture
def twin(tmp_path, remote):
    """An embedded database made as the served one was (the test issues the same tokens on both)."""
    from anjian.workflow.services.registry import initialize

    folder = tmp_path / "twin"
    folder.mkdir()
    with new_database_url(folder) as url:
        db = Database(url)
        initialize(db, None, None, T0, "admin")
        add_officials(db, TEST_OFFICIALS)
        yield url, db
        db.dispose()


class Twins:
    """Runs each step on both sides and insists on the same exit code and output."""

    def __init__(self, remote, url: str, tmp_path):
        self.remote, self.url, self.home = remote, url, tmp_path / "embedded-home"
        self.folder = tmp_path / "embedded"
        self.folder.mkdir()

    def embedded(self, *args: str, official: str, now: str):
        from anjian.workflow.cli import cli as group

        env = {"ANJIAN_DB": self.url, "ANJIAN_HOME": str(self.home), "ANJIAN_SERVER": None, "ANJIAN_TOKEN": None,
               "ANJIAN_NOW": None, "ANJIAN_USER": None}
        login = mock.patch("anjian.workflow.services.officials.os_login", lambda: "os-" + official)
        with clock_at(now), _cwd(self.folder), login:
            return CliRunner().invoke(group, list(args), env=env, catch_exceptions=False)

    def __call__(self, *args: str, official: str = "county_official", now: str, code: int = 0, seen=lambda t: t):
        r = self.remote(*args, official=official, now=now)
        e = self.embedded(*args, official=official, now=now)
        assert r.exit_code == e.exit_code == code, (args, r.output, e.output)
        assert seen(r.stdout) == seen(e.stdout), args
        assert r.stderr == e.stderr, args
        return r


HASHES = re.compile(r'"(?:prev_)?hash": "[0-9a-f]{64}",?\s*')


@pytest.mark.slow  # the whole campaign twice, step by step
def test_walk_kuancheng_remote_and_embedded_print_the_same(remote, twin, served, tmp_path):
    """Each step of 宽城's campaign, from mobilization to standardized, prints the same and exits the same
    through the server and embedded."""
    from anjian.workflow.services import credentials, officials

    url, twin_db = twin
    with clock_at("2014-12-15T09:00"):  # every row the set-up writes is stamped alike on both sides
        for official in ACTING:  # tokens that outlive the campaign's two years (90 days by default)
            now = dt.datetime.now(dt.UTC)
            served.tokens[official] = credentials.issue(served.db, official, "admin", now, days=3650).secret
            credentials.issue(twin_db, official, "admin", now, days=3650)
        for db in (served.db, twin_db):
            for official in ACTING:
                officials.edit(db, official, "admin", at("2014-12-15T09:00"), os_user="os-" + official)
    step = Twins(remote, url, tmp_path)
    files = tmp_path / "files"  # the same absolute paths for both sides: evidence is recorded by path
    files.mkdir()

    r = step("units", "--county", CODE, "--level", "township", "--format", "json", now="2014-12-15T09:00")
    others = [u["code"] for u in json.loads(r.stdout) if u["code"] not in (YUERYA_CODE, *DEMOS, *KEYS)]
    now = "2014-12-20T09:00"
    step("advance", COUNTY, "submit_plan", now=now, code=3)
    step("record", COUNTY, "county.leadership_group", "组长：县长 李四（宽政办〔2014〕88号）", now=now)
    step("record", COUNTY, "county.plan_meeting", "是", now=now)
    plan = files / "推进方案.pdf"
    plan.write_bytes("推进方案".encode() * 50)
    step("advance", COUNTY, "submit_plan", "--evidence", str(plan), now=now)
    step("show", CODE, "--format", "json", now=now)

    keys = files / "keys.csv"
    keys.write_text("unit,cohort\n" + "".join(f"{c},key\n" for c in DEMOS + KEYS), encoding="utf-8")
    step("designate", "--file", str(keys), official="city_office", now="2014-12-22T09:00")
    step("designate", "--file", str(files / "missing.csv"), official="city_office", now="2014-12-22T09:00", code=2)
    cohorts = files / "cohorts.csv"
    cohorts.write_text("unit,cohort\n" + "".join(f"{c},county_demo\n" for c in DEMOS) + f"{HEAVY},heavy_task\n",
                       encoding="utf-8")
    step("designate", "--file", str(cohorts), now="2014-12-22T09:00")

    step("advance", YUERYA, "start", official="chief_yuerya", now="2015-01-05T09:00")
    sheet = files / "清单.csv"
    (files / "车辆.pdf").write_bytes(b"%PDF vehicle")
    sheet.write_text(f"unit,item,value,evidence\n{YUERYA_CODE},six.vehicle,是,车辆.pdf\n", encoding="utf-8")
    step("record", "--file", str(sheet), official="chief_yuerya", now="2015-01-06T09:00")
    step("record", YUERYA, "--template", "清单.xlsx", official="chief_yuerya", now="2015-01-06T09:00")
    assert (remote.folder / "清单.xlsx").stat().st_size > 0 and (step.folder / "清单.xlsx").exists()
    step("deadlines", "--ics", "节点.ics", now="2015-01-06T09:00")
    assert (remote.folder / "节点.ics").read_bytes() == (step.folder / "节点.ics").read_bytes()
    with clock_at("2015-01-20T09:00"):
        for db in (served.db, twin_db):
            record_checklist(db, YUERYA_CODE, frozenset({"provincial_demo"}), actor="chief_yuerya",
                             now=at("2015-01-20T09:00"))
    step("advance", YUERYA, "apply", official="chief_yuerya", now="2015-02-10T09:00")
    step("advance", YUERYA, "accept", official="city_inspector", now="2015-03-20T09:00", code=3)
    step("advance", YUERYA, "accept", "--note", "合格", official="chief_yuerya", now="2015-03-20T09:00", code=4)
    step("advance", YUERYA, "accept", "--note", "省级验收合格", official="city_inspector", now="2015-03-20T09:00")

    later = "2015-04-01T09:00"
    step("status", now=later)
    step("show", YUERYA, now=later)
    step("units", "--county", CODE, "--format", "csv", now=later)
    step("status", "--format", "csv", "--out", "progress.csv", now=later)
    assert (remote.folder / "progress.csv").read_bytes() == (step.folder / "progress.csv").read_bytes()
    # the chains differ in their hashes alone: the service's also holds its sign-ins and tokens
    step("history", YUERYA, "--format", "json", now=later, seen=lambda t: HASHES.sub("", t))
    step("history", YUERYA, now=later)
    # the chain's head differs: the tokens' ids (in their token_create rows) are random on each side
    step("audit", "verify", official="city_office", now=later, seen=lambda t: re.sub(r"[0-9a-f]{16}…", "…", t))

    # The rest of the plan, to the county's standardization: the county triggers and the batches through
    # the CLI, each refused first where the plan says so; the other townships' checklists through the
    # services, alike on both sides.
    both = (served.db, twin_db)
    step("advance", COUNTY, "approve_demonstration", "--note", "示范创建总结", official="city_office",
         now="2015-04-01T09:00", code=3)
    for code in DEMOS:
        _accepted(both, code, frozenset({"key", "county_demo"}), "2015-04-10T09:00")
    step("advance", COUNTY, "approve_demonstration", "--note", "示范创建验收合格，召开现场观摩会", official="city_office",
         now="2015-07-10T09:00")
    step("advance", COUNTY, "certify_key_compliance", official="city_office", now="2015-07-15T09:00", code=3)
    for code in KEYS:
        _accepted(both, code, frozenset({"key"}), "2015-08-01T09:00")
    starts = files / "start.csv"
    starts.write_text("unit,trigger,note\n" + "".join(f"{c},start,\n" for c in others), encoding="utf-8")
    step("advance", "--file", str(starts), official="city_office", now="2015-09-10T09:00")
    step("advance", COUNTY, "certify_key_compliance", official="city_office", now="2015-12-20T09:00")
    step("advance", COUNTY, "certify_full_coverage", official="city_office", now="2016-01-10T09:00", code=3)
    with clock_at("2016-03-01T09:00"):
        for db in both:
            for code in others:
                record_checklist(db, code, frozenset({"heavy_task"}) if code == HEAVY else frozenset(),
                                 actor="city_office", now=at("2016-03-01T09:00"))
    applies = files / "apply.csv"
    applies.write_text("unit,trigger,note\n" + "".join(f"{c},apply,\n" for c in others), encoding="utf-8")
    step("advance", "--file", str(applies), official="city_office", now="2016-04-01T09:00")
    step("advance", others[0], "reject", "--note", "台账不全", official="city_inspector", now="2016-05-01T09:00")
    step("show", others[0], now="2016-05-02T09:00")
    step("advance", others[0], "resubmit", official="city_office", now="2016-05-20T09:00")
    accepts = files / "accept.csv"
    accepts.write_text("unit,trigger,note\n" + "".join(f"{c},accept,验收合格\n" for c in others), encoding="utf-8")
    step("advance", "--file", str(accepts), official="city_inspector", now="2016-06-01T09:00")
    step("advance", COUNTY, "certify_full_coverage", official="city_office", now="2016-10-01T09:00")
    end = "2016-12-31T12:00"
    county = json.loads(step("show", CODE, "--format", "json", now=end).stdout)
    assert county["state"] == "standardized" and {m["status"] for m in county["milestones"]} == {"met"}
    step("status", "--county", CODE, now=end)
    step("history", CODE, now=end)
    step("audit", "verify", official="city_office", now=end, seen=lambda t: re.sub(r"[0-9a-f]{16}…", "…", t))


def _accepted(dbs, code: str, cohorts: frozenset[str], day: str) -> None:
    """A township's whole path through the services, alike on each database (as test_walk's)."""
    from anjian.workflow.services.advance import advance

    when = at(day)
    for db in dbs:
        with clock_at(when):
            advance(db, code, "start", "city_office", when)
            record_checklist(db, code, cohorts, actor="city_office", now=when)
        with clock_at(when + dt.timedelta(days=10)):
            advance(db, code, "apply", "city_office", when + dt.timedelta(days=10))
        with clock_at(when + dt.timedelta(days=20)):
            advance(db, code, "accept", "city_inspector", when + dt.timedelta(days=20), note="资料齐全，现场核查合格")
