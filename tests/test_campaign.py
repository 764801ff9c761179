"""The campaign file: the built-in chengde-2014 as the plan says, and bad files refused by line and field."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from anjian.states.campaign import CampaignError, builtin_text, load
from anjian.states.guards import Child, Facts, checklist, guard_of
from anjian.states.machines import SPECS
from anjian.states.milestones import milestones
from anjian.workflow.clock import SHANGHAI
from anjian.workflow.engine import machine

BUILTIN = builtin_text("chengde-2014")
CONTRACT_MILESTONES = [
    ("plan_submission", dt.date(2014, 12, 30)),
    ("provincial_demo", dt.date(2015, 3, 31)),
    ("county_demo", dt.date(2015, 6, 30)),
    ("demo_review", dt.date(2015, 7, 31)),
    ("key_compliance", dt.date(2015, 12, 31)),
    ("full_coverage", dt.date(2016, 12, 31)),
]


def edited(line: int, old: str, new: str, text: str = BUILTIN) -> str:
    """The campaign text with `old` replaced by `new` on one line (1-based), which must hold `old`."""
    lines = text.splitlines(keepends=True)
    assert old in lines[line - 1], f"line {line} is {lines[line - 1]!r}, without {old!r}"
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    return "".join(lines)


def problems_of(text: str) -> list[str]:
    with pytest.raises(CampaignError) as caught:
        load(text, "bad.toml")
    assert caught.value.source == "bad.toml"
    assert str(caught.value).startswith("bad.toml: ")
    return caught.value.problems


# -- the built-in campaign --------------------------------------------------------------------------
def test_builtin_campaign_loads_with_its_identity():
    """chengde-2014 loads as the 承德市 plan issued 2014-12-10, dated in Asia/Shanghai."""
    c = load(BUILTIN)
    assert (c.id, c.city, c.issued, c.timezone) == ("chengde-2014", "130800", dt.date(2014, 12, 10), "Asia/Shanghai")
    assert c.title == "承德市乡镇安全监管规范化建设"


def test_builtin_campaign_has_the_contract_milestones_in_order():
    """The six milestones of the contract, with their ids and deadlines, in deadline order."""
    assert [(m.id, m.deadline) for m in load(BUILTIN).milestones] == CONTRACT_MILESTONES


def test_builtin_campaign_stages_follow_the_plan():
    """The four stages start and end on the plan's days and are the city machine's states."""
    stages = [(s.id, s.starts, s.ends) for s in load(BUILTIN).stages]
    assert stages == [
        ("mobilization", dt.date(2014, 12, 10), dt.date(2014, 12, 31)),
        ("demonstration", dt.date(2015, 1, 1), dt.date(2015, 6, 30)),
        ("key_compliance", dt.date(2015, 7, 1), dt.date(2015, 12, 31)),
        ("full_coverage", dt.date(2016, 1, 1), dt.date(2016, 12, 31)),
    ]
    assert [s[0] for s in stages] == list(SPECS["city"].states[:-1])


def test_builtin_campaign_cohorts_and_their_deadlines():
    """The four contract cohorts; county demonstrations are 1–3 per county and must be key townships."""
    cohorts = load(BUILTIN).cohorts
    assert list(cohorts) == ["provincial_demo", "county_demo", "key", "heavy_task"]
    assert {c.id: c.deadline for c in cohorts.values()} == {
        "provincial_demo": dt.date(2015, 3, 31), "county_demo": dt.date(2015, 6, 30),
        "key": dt.date(2015, 12, 31), "heavy_task": None}
    assert cohorts["county_demo"].per_county == (1, 3)
    assert cohorts["county_demo"].requires == ("key",)


def test_builtin_checklist_has_the_plan_items():
    """The township checklist holds the six haves, eleven duties, seven systems and ten ledgers."""
    items = load(BUILTIN).items("township")
    prefixes = [i.id.split(".")[0] for i in items]
    assert prefixes.count("six") == 6
    assert prefixes.count("duty") == 11
    assert prefixes.count("system") == 7
    assert prefixes.count("ledger") == 10
    assert all(i.kind == "text" for i in items if i.id.startswith("ledger."))
    assert len({i.id for i in items}) == len(items)


def test_builtin_checklist_staffing_rules():
    """Full-time staff need 4 for key and 2 for heavy-task townships; certificates and officers follow other counts."""
    c = load(BUILTIN)
    full_time = c.item("township", "staff.full_time")
    assert full_time.requirement(frozenset()) == 0
    assert full_time.requirement(frozenset({"key"})) == 4
    assert full_time.requirement(frozenset({"heavy_task"})) == 2
    assert full_time.requirement(frozenset({"key", "heavy_task"})) == 4
    assert c.item("township", "staff.certified").minimum_of == "staff.full_time"
    assert c.item("township", "staff.information_officers").minimum_of == "staff.villages"
    assert c.item("township", "org.separate_station").only_for == ("key",)
    assert set(c.item("township", "staff.chief").only_for) == {"key", "heavy_task"}


def test_builtin_county_checklist_requires_the_leadership_group_only():
    """A county's plan needs its leadership group recorded; the topical meeting is optional."""
    items = {i.id: i for i in load(BUILTIN).items("county")}
    assert items["county.leadership_group"].kind == "text"
    assert items["county.plan_meeting"].requirement(frozenset()) is False


def test_loading_is_stable_and_fingerprinted():
    """The same text gives the same sha256; one changed byte gives another."""
    assert load(BUILTIN).sha256 == load(BUILTIN).sha256
    assert load(BUILTIN).sha256 != load(BUILTIN + "\n").sha256


# -- bad files --------------------------------------------------------------------------------------
def test_a_stage_s_id_is_checked_at_its_line_and_a_renamed_stage_at_each_milestone_naming_it():
    """A stage's id is the file's own (the city machine is the stages), but it must be an identifier; a
    stage renamed leaves every milestone that names the old id refused at its `stage` line."""
    problems = problems_of(edited(21, '"demonstration"', '"Demo"'))
    assert problems[0].startswith("line 21, stages[1].id: a stage's id is lower-case letters, digits and _")
    assert problems_of(edited(21, '"demonstration"', '"demo"')) == [
        f"line {n}, milestones[{k}].stage: unknown stage 'demonstration' (stages: mobilization, demo, key_compliance, "
        "full_coverage)" for n, k in ((123, 1), (135, 2), (147, 3))]


def test_unknown_stage_of_a_milestone_names_its_line_and_field():
    """A milestone naming a stage that does not exist is refused at its `stage` line."""
    assert problems_of(edited(123, '"demonstration"', '"demonstraton"')) == [
        "line 123, milestones[1].stage: unknown stage 'demonstraton' (stages: mobilization, demonstration, "
        "key_compliance, full_coverage)"]


def test_stages_reordered_leave_a_milestone_due_before_its_stage():
    """Two stages' ids swapped: the milestone of the stage that now starts later falls due before it."""
    swapped = edited(27, '"key_compliance"', '"full_coverage"', edited(33, '"full_coverage"', '"key_compliance"'))
    assert problems_of(swapped) == [
        "line 155, milestones[4].deadline: 2015-12-31 is before its stage 'key_compliance' starts (2016-01-01)"]
    # a file a database already runs still opens: the check came after it was loaded
    assert "key_compliance" in {m.stage for m in load(swapped, stored=True).milestones}


def test_out_of_order_milestone_deadline_names_its_line_and_field():
    """A milestone due before the one above it is refused at its `deadline` line."""
    assert problems_of(edited(134, "2015-06-30", "2015-02-28")) == [
        "line 134, milestones[2].deadline: 2015-02-28 is before the previous milestone's 2015-03-31 (dates out of order)"]


def test_milestone_before_the_issue_date_is_refused():
    """A deadline before the campaign was issued is refused at its line."""
    problems = problems_of(edited(113, "2014-12-30", "2014-12-01"))
    assert problems == ["line 113, milestones[0].deadline: 2014-12-01 is before the campaign was issued (2014-12-10)"]


def test_out_of_order_stage_start_names_its_line_and_field():
    """A stage starting before the previous stage is refused at its `starts` line."""
    problems = problems_of(edited(29, "2015-07-01", "2014-12-20"))
    assert problems == ["line 29, stages[2].starts: 2014-12-20 is not after the previous stage's start 2015-01-01 "
                        "(dates out of order)"]


def test_stage_ending_before_it_starts_names_its_line_and_field():
    """A stage whose `ends` is before its `starts` is refused at the `ends` line."""
    problems = problems_of(edited(30, "2015-12-31", "2015-06-30"))
    assert problems == ["line 30, stages[2].ends: 2015-06-30 is before starts 2015-07-01"]


def test_a_cohort_id_that_is_not_an_identifier_names_its_table_line():
    """A campaign names its own cohorts, but each id is what officials type and the database stores: lower-case
    letters, digits and _ only, refused at its header otherwise."""
    problems = problems_of(edited(63, "[cohorts.key]", "[cohorts.Key-Towns]"))
    bad_id = "line 63, cohorts.Key-Towns: a cohort's id is lower-case letters, digits and _, not 'Key-Towns'"
    assert bad_id in problems
    assert all("unknown cohort 'key'" in p for p in problems if p != bad_id)  # every place that names `key` says so
    assert len(problems) == 9  # 8 places name `key`; a guard that names it is not reported again where it is used


def test_a_campaign_declares_a_cohort_of_its_own():
    """A cohort the engine has never heard of is the campaign's to declare, with its words and who designates it."""
    text = BUILTIN.replace("[[milestones]]", '[cohorts.recheck]\nname = "回头看乡镇"\nshort = "回头看"\n'
                           'name_en = "re-inspected township"\ndesignated_by = ["county_official"]\n\n[[milestones]]', 1)
    c = load(text)
    assert list(c.cohorts)[-1] == "recheck"
    assert (c.cohorts["recheck"].word(False, "zh"), c.cohorts["recheck"].word(True, "zh")) == ("回头看乡镇", "回头看")
    assert c.cohorts["recheck"].word(True, "en") == "re-inspected township"
    assert c.cohorts["recheck"].designated_by == ("county_official",)
    assert c.milestone_cohorts == ("provincial_demo", "county_demo", "key")


@pytest.mark.parametrize(("line", "old", "new", "expected"), [
    pytest.param(158, '"key"', '"keys"', "line 158, milestones[4].rules[0].cohorts: unknown cohort 'keys' (declared: "
                 "provincial_demo, county_demo, key, heavy_task)", id="rule"),
    pytest.param(205, '"key"', '"keys"', "line 205, checklist.township[3].only_for: unknown cohort 'keys'",
                 id="only_for"),
    pytest.param(324, "key = 4", "keys = 4", "line 324, checklist.township[22].by_cohort: unknown cohort 'keys'",
                 id="by_cohort"),
    pytest.param(61, '"key"', '"keys"', "line 61, cohorts.county_demo.requires: unknown cohort 'keys' (declared: "
                 "provincial_demo, county_demo, key, heavy_task)", id="requires"),
])
def test_unknown_cohort_in_a_field_names_its_line_and_field(line, old, new, expected):
    """A misspelt cohort in a rule, `only_for`, `by_cohort` or `requires` is refused where it is written."""
    assert problems_of(edited(line, old, new)) == [expected]


@pytest.mark.parametrize(("line", "old", "new", "expected"), [
    pytest.param(331, "minimum_of", "minimun_of", "line 331, checklist.township[23].minimun_of: unknown field",
                 id="item"),
    pytest.param(17, "starts", "start", "line 17, stages[0].start: unknown field", id="stage"),
    pytest.param(10, "city", "cty", "line 10, campaign.cty: unknown field", id="campaign"),
    pytest.param(138, "guards", "guard", "line 138, milestones[2].rules[1].guard: unknown field", id="rule"),
    pytest.param(108, "[[milestones]]", "[[milestone]]", "line 108, milestone: unknown field", id="top-level"),
])
def test_unknown_field_names_its_line_and_field(line, old, new, expected):
    """A misspelt field is refused at the line it is written on, listing the allowed fields."""
    problems = problems_of(edited(line, old, new))
    assert problems[0].startswith(expected + " (allowed: ")


def test_misspelt_checklist_level_is_refused_rather_than_dropped():
    """`[[checklist.conty]]` is refused at its header instead of silently leaving counties without a checklist."""
    assert problems_of(edited(491, "[[checklist.county]]", "[[checklist.conty]]")) == [
        "line 491, checklist.conty[0]: unknown checklist level (allowed: county, township)"]


def test_entries_that_are_not_tables_are_refused():
    """A cohort or a milestone written as a plain value is refused with its line, not a crash."""
    problems = problems_of(edited(72, "[cohorts.heavy_task]", "[cohorts]\nheavy_task = 5\n[unrelated]"))
    assert "line 73, cohorts.heavy_task: must be a table [cohorts.heavy_task], not 5" in problems
    lines = BUILTIN.splitlines(keepends=True)
    assert lines[107] == "[[milestones]]\n" and lines[174].startswith("# ----")
    without_milestones = "".join([*lines[:4], "milestones = [1]\n", *lines[4:107], *lines[174:]])
    assert problems_of(without_milestones) == [
        "line 5, milestones[0]: must be a table, not 1"]
    assert problems_of(without_milestones.replace("milestones = [1]", 'milestones = "none"')) == [
        "line 5, milestones: must be an array of tables [[milestones]], not 'none'"]


def test_misspelt_required_field_is_also_reported_missing():
    """A typo in `deadline` reports both the unknown field and the missing `deadline` of that milestone."""
    problems = problems_of(edited(122, "deadline", "deadlin"))
    assert problems == [
        "line 122, milestones[1].deadlin: unknown field (allowed: deadline, id, name, rules, short, short_en, stage)",
        "line 117, milestones[1].deadline: is required",
    ]


@pytest.mark.parametrize(("line", "old", "new", "expected"), [
    pytest.param(122, "2015-03-31", '"2015-03-31"', "line 122, milestones[1].deadline: must be date, not '2015-03-31'",
                 id="date-as-string"),
    pytest.param(338, "1", "true", "line 338, checklist.township[24].required: must be int, not True",
                 id="bool-as-count"),
    pytest.param(338, "1", '"1"', "line 338, checklist.township[24].required: must be int, not '1'",
                 id="string-as-count"),
    pytest.param(324, "key = 4", 'key = "4"', "line 324, checklist.township[22].by_cohort: key must be a whole number, "
                 "not '4'", id="by-cohort-string"),
    pytest.param(60, "[1, 3]", "[3, 1]", "line 60, cohorts.county_demo.per_county: must be [least, most], not [3, 1]",
                 id="per-county"),
    pytest.param(186, '"flag"', '"flagg"', "line 186, checklist.township[0].kind: must be one of flag, count, text, "
                 "not 'flagg'", id="kind"),
    pytest.param(6, '"chengde-2014"', "2014", "line 6, campaign.id: must be str, not 2014", id="int-as-string"),
    pytest.param(9, "2014-12-10", "2014-12-10T08:00:00", "line 9, campaign.issued: must be date, not "
                 "datetime.datetime(2014, 12, 10, 8, 0)", id="datetime-as-date"),
    pytest.param(134, "2015-06-30", "2015-06-30T00:00:00+08:00", "line 134, milestones[2].deadline: must be date",
                 id="offset-datetime-as-date"),
    pytest.param(23, "2015-01-01", "2015-01-01T00:00:00", "line 23, stages[1].starts: must be date",
                 id="datetime-as-stage-start"),
    pytest.param(502, "true", '"yes"', "line 502, checklist.county[1].optional: must be bool, not 'yes'",
                 id="string-as-flag"),
    pytest.param(61, '["key"]', '"key"', "line 61, cohorts.county_demo.requires: must be list, not 'key'",
                 id="string-as-list"),
    pytest.param(11, "Asia/Shanghai", "Asia/Shanghia", "line 11, campaign.timezone: unknown time zone 'Asia/Shanghia'",
                 id="time-zone"),
])
def test_wrong_type_names_its_line_and_field(line, old, new, expected):
    """A value of the wrong type is refused at its line, saying what was expected and what was found."""
    problems = problems_of(edited(line, old, new))
    assert len(problems) == 1
    assert problems[0].startswith(expected)


@pytest.mark.parametrize(("line", "old", "new", "expected"), [
    pytest.param(138, "county_demos_accepted", "county_demos_acepted",
                 "line 138, milestones[2].rules[1].guards: unknown county guard 'county_demos_acepted'", id="guard"),
    pytest.param(125, 'states = ["accepted"]', 'guards = ["county_demos_accepted"]',
                 "line 125, milestones[1].rules[0].guards: unknown township guard 'county_demos_accepted'",
                 id="guard-of-another-level"),
    pytest.param(137, '"accepted"', '"acepted"', "line 137, milestones[2].rules[0].states: unknown township state 'acepted'",
                 id="state"),
    pytest.param(115, '"standardized"', '"accepted"', "line 115, milestones[0].rules[0].states: unknown county state "
                 "'accepted'", id="state-of-another-level"),
    pytest.param(115, 'level = "county"', 'level = "city"', "line 115, milestones[0].rules[0].level: rule level must be "
                 "township or county, not 'city'", id="level"),
    pytest.param(126, 'when_has = "provincial_demo"', 'when_has = "provincial"',
                 "line 126, milestones[1].rules[1].when_has: unknown cohort 'provincial'", id="when_has"),
    pytest.param(171, 'states = ["accepted"]', 'state = ["accepted"]',
                 "line 171, milestones[5].rules[0].state: unknown field", id="rule-without-condition"),
    pytest.param(148, '{ level = "county", states = ["key_compliance", "full_coverage", "standardized"] }', '"county"',
                 "line 148, milestones[3].rules[0]: must be a table", id="rule-not-a-table"),
    pytest.param(137, '["accepted"]', '"accepted"', "line 137, milestones[2].rules[0].states: must be a list of names",
                 id="states-not-a-list"),
])
def test_bad_rule_names_its_line_and_field(line, old, new, expected):
    """A rule with an unknown guard, state, level or cohort is refused at the line of that rule."""
    problems = problems_of(edited(line, old, new))
    assert problems[0].startswith(expected)


def test_rule_without_states_or_guards_is_refused():
    """A rule must say what makes the milestone met."""
    problems = problems_of(edited(171, 'states = ["accepted"]', 'cohorts = ["key"]'))
    assert problems == ["line 171, milestones[5].rules[0]: a rule needs `states` or `guards`"]


@pytest.mark.parametrize(("line", "old", "new", "expected"), [
    pytest.param(352, "staff.villages", "staff.chief",
                 "line 352, checklist.township[26].minimum_of: 'staff.chief' is not an earlier count item", id="flag"),
    pytest.param(331, "staff.full_time", "staff.villages",
                 "line 331, checklist.township[23].minimum_of: 'staff.villages' is not an earlier count item",
                 id="later-count"),
    pytest.param(331, "staff.full_time", "staff.fulltime",
                 "line 331, checklist.township[23].minimum_of: 'staff.fulltime' is not an earlier count item",
                 id="missing"),
])
def test_minimum_of_a_non_count_names_its_line_and_field(line, old, new, expected):
    """`minimum_of` must name an earlier count item; a flag, a later item or a typo is refused at its line."""
    assert problems_of(edited(line, old, new)) == [expected]


def test_duplicate_item_and_milestone_ids_are_refused():
    """Two items or two milestones with one id are refused at the second one's `id` line."""
    assert problems_of(edited(189, "org.committee_office", "org.safety_committee")) == [
        "line 189, checklist.township[1].id: duplicate item 'org.safety_committee'"]
    assert problems_of(edited(130, "county_demo", "provincial_demo")) == [
        "line 130, milestones[2].id: duplicate milestone 'provincial_demo'"]


@pytest.mark.parametrize(("line", "old", "new", "field"), [
    pytest.param(122, "2015-03-31", "2015-03-3", "milestones[1].deadline", id="bad-date"),
    pytest.param(185, '"成立', "成立", "checklist.township[0].label", id="unquoted-string"),
    pytest.param(137, "] },", "},", "milestones[2].rules", id="unclosed-array"),
])
def test_toml_syntax_error_names_its_line_and_field(line, old, new, field):
    """A file that is not TOML is one problem naming the line and the field it broke on."""
    problems = problems_of(edited(line, old, new))
    assert len(problems) == 1
    (problem,) = problems
    found = re.match(r"line (\d+), (\S+): TOML syntax: ", problem)
    assert found, problem
    assert abs(int(found[1]) - line) <= 1
    assert found[2].startswith(field)


def test_every_problem_of_a_file_is_reported_at_once():
    """Several mistakes in one file come back together, each with its own line."""
    text = edited(29, "2015-07-01", "2014-12-20")
    text = edited(134, "2015-06-30", "2015-02-28", text)
    text = edited(331, "minimum_of", "minimun_of", text)
    lines = [int(re.match(r"line (\d+),", p)[1]) for p in problems_of(text)]
    assert sorted(lines) == [29, 134, 331]


# -- another city, another run ----------------------------------------------------------------------
def shifted_a_year(text: str) -> str:
    """The campaign with every date one year later (2016 first, so no date is shifted twice)."""
    for year in ("2016", "2015", "2014"):
        text = re.sub(rf"\b{year}-(\d\d)-(\d\d)\b", lambda m, y=int(year): f"{y + 1}-{m[1]}-{m[2]}", text)
    return text.replace('id = "chengde-2014"', 'id = "chengde-2015"', 1)


def test_a_rerun_with_other_dates_is_just_another_file():
    """A copy of the built-in file with every date a year later loads with its own stages and deadlines."""
    c = load(shifted_a_year(BUILTIN), "chengde-2015.toml")
    assert c.id == "chengde-2015"
    assert c.issued == dt.date(2015, 12, 10)
    assert [(m.id, m.deadline) for m in c.milestones] == [
        (mid, day.replace(year=day.year + 1)) for mid, day in CONTRACT_MILESTONES]
    assert [s.starts for s in c.stages] == [dt.date(2015, 12, 10), dt.date(2016, 1, 1), dt.date(2016, 7, 1),
                                            dt.date(2017, 1, 1)]
    assert c.sha256 != load(BUILTIN).sha256


def test_a_rerun_drives_the_guards_and_milestones_by_its_own_dates():
    """With the shifted file, the city enters demonstration on 2016-01-01 and milestones fall due a year later."""
    c = load(shifted_a_year(BUILTIN))
    city = Facts("city", "130800", "承德市", "mobilization", frozenset(), c, dt.datetime(2015, 12, 31, 23, 0, tzinfo=SHANGHAI))
    assert machine.check(city, "begin_demonstration").unmet == ("2016-01-01 起方可进入（今天是 2015-12-31）",)
    city.now = dt.datetime(2016, 1, 1, 0, 0, tzinfo=SHANGHAI)
    assert machine.check(city, "begin_demonstration").allowed
    key = Facts("township", "130821100", "下板城镇", "building", frozenset({"key"}), c, city.now)
    status = {m.id: (m.status, m.days) for m in milestones(key, c, dt.date(2016, 12, 1))}
    assert status == {"key_compliance": ("pending", 30), "full_coverage": ("pending", 395)}


def test_another_city_can_change_a_requirement():
    """Another city's file may ask more of its key townships; the checklist follows the file."""
    text = edited(324, "key = 4", "key = 6")
    text = text.replace('city = "130800"', 'city = "130700"', 1).replace('id = "chengde-2014"', 'id = "zjk-2015"', 1)
    c = load(text)
    assert c.city == "130700"
    facts = Facts("township", "x", "某镇", "building", frozenset({"key"}), c, dt.datetime(2015, 3, 1, tzinfo=SHANGHAI),
                  checklist={"staff.full_time": "4"})
    (full_time,) = [s for s in checklist(facts) if s.item == "staff.full_time"]
    assert (full_time.required, full_time.ok) == (6, False)


def test_county_children_are_judged_by_the_loaded_campaigns_limits():
    """A file allowing 1–5 county demonstrations lets a county with four pass the demonstration rule."""
    text = edited(60, "[1, 3]", "[1, 5]")
    c = load(text)
    kids = tuple(Child(f"k{n}", f"示范{n}", "accepted", frozenset({"key", "county_demo"})) for n in range(4))
    facts = Facts("county", "130821", "承德县", "demonstration", frozenset(), c, dt.datetime(2015, 6, 1, tzinfo=SHANGHAI),
                  children=kids)
    assert guard_of(c, "county", "county_demos_accepted")(facts) == []
    assert guard_of(load(BUILTIN), "county", "county_demos_accepted")(
        Facts("county", "130821", "承德县", "demonstration", frozenset(), load(BUILTIN), facts.now, children=kids)) == [
        "县区示范重点乡镇至多 3 个，现有 4 个"]


def test_reminder_ladder_is_read_from_the_campaign():
    """The [reminders] table sets the ladder; a non-positive interval is refused at its line."""
    assert load(BUILTIN).reminders.before == (30, 14, 7, 3, 1)
    assert load(BUILTIN).reminders.overdue_every == 7
    other = load(BUILTIN.replace("before = [30, 14, 7, 3, 1]", "before = [10, 2]"))
    assert other.reminders.before == (10, 2)
    problems = problems_of(BUILTIN.replace("overdue_every = 7", "overdue_every = 0"))
    line = BUILTIN.splitlines().index("overdue_every = 7") + 1
    assert problems == [f"line {line}, reminders.overdue_every: must be a whole number of days above 0, not 0"]


# -- the target assessment ([assessment]) -----------------------------------------------------------
ASSESSMENT = BUILTIN.splitlines().index("[assessment]") + 1  # the table's header line; the rules follow it


def at_assessment(offset: int, old: str, new: str) -> tuple[int, str]:
    """The line `offset` below the [assessment] header, and the campaign with `old` replaced there."""
    return ASSESSMENT + offset, edited(ASSESSMENT + offset, old, new)


def test_builtin_assessment_rules():
    """chengde-2014 starts every county at 100 and holds one deduction per milestone, as the file writes them."""
    a = load(BUILTIN).assessment
    assert a.base == 100
    assert [(d.milestone, d.level, d.late, d.missed) for d in a.deductions] == [
        ("plan_submission", "county", 1, 2), ("provincial_demo", "township", 1, 2), ("county_demo", "county", 1, 2),
        ("demo_review", "county", 1, 2), ("key_compliance", "township", 0.5, 1), ("full_coverage", "township", 0.2, 0.5)]
    assert a.rule("provincial_demo", "township").missed == 2
    assert a.rule("provincial_demo", "county") is None


def test_a_campaign_without_assessment_has_base_100_and_no_deductions():
    """A file with no [assessment] table loads with the base of 100 and nothing to deduct."""
    lines = BUILTIN.splitlines(keepends=True)
    c = load("".join(lines[:ASSESSMENT - 1]))
    assert c.assessment.base == 100
    assert c.assessment.deductions == ()
    assert all(c.assessment.rule(m.id, level) is None for m in c.milestones for level in ("county", "township"))


@pytest.mark.parametrize(("offset", "old", "new", "expected"), [
    pytest.param(4, '"plan_submission"', '"plan_submision"', "assessment.deductions[0].milestone: unknown milestone "
                 "'plan_submision' (known: plan_submission, provincial_demo, county_demo, demo_review, key_compliance, "
                 "full_coverage)", id="unknown-milestone"),
    pytest.param(5, '"county"', '"township"', "assessment.deductions[0].level: milestone 'plan_submission' has no rule "
                 "for level 'township'", id="level-without-a-rule"),
    pytest.param(5, '"county"', '"city"', "assessment.deductions[0].level: must be county or township, not 'city'",
                 id="unknown-level"),
    pytest.param(7, "missed = 2", "missed = -2", "assessment.deductions[0].missed: must be 0 or more points, not -2",
                 id="negative-missed"),
    pytest.param(30, "late = 0.5", "late = -0.5", "assessment.deductions[4].late: must be 0 or more points, not -0.5",
                 id="negative-late"),
    pytest.param(22, '"demo_review"', '"county_demo"', "assessment.deductions[3].milestone: a second deduction for "
                 "'county_demo' at level 'county'", id="duplicate"),
    pytest.param(6, "late", "lat", "assessment.deductions[0].lat: unknown field (allowed: late, level, milestone, "
                 "missed)", id="unknown-field-of-a-deduction"),
    pytest.param(1, "base", "bas", "assessment.bas: unknown field (allowed: base, deductions)",
                 id="unknown-field-of-assessment"),
    pytest.param(1, "100", '"100"', "assessment.base: must be int or float, not '100'", id="base-as-string"),
    pytest.param(4, 'milestone = "plan_submission"', "milestone = 5", "assessment.deductions[0].milestone: must be str, "
                 "not 5", id="milestone-as-number"),
])
def test_bad_assessment_names_its_line_and_field(offset, old, new, expected):
    """Each mistake in [assessment] is one problem, at the line it is written on."""
    line, text = at_assessment(offset, old, new)
    assert problems_of(text) == [f"line {line}, {expected}"]


@pytest.mark.parametrize(("offset", "old", "new", "field"), [
    pytest.param(6, "late = 1", "late = true", "deductions[0].late", id="late"),
    pytest.param(1, "base = 100", "base = true", "base", id="base"),
])
def test_points_written_as_a_flag_are_refused(offset, old, new, field):
    """`late = true` is no number of points (a bool is an int only to Python), as `required = true` is refused
    for a count: one problem at its line, not 1 point."""
    line, text = at_assessment(offset, old, new)
    try:
        c = load(text, "bad.toml")
    except CampaignError as exc:
        assert exc.problems == [f"line {line}, assessment.{field}: must be int or float, not True"]
        return
    loaded = c.assessment.base if field == "base" else c.assessment.rule("plan_submission", "county").late
    pytest.fail(f"line {line} `{new}` was accepted and loaded as {loaded!r}; expected the problem "
                f"'line {line}, assessment.{field}: must be int or float, not True'")


def test_misspelt_deductions_table_names_its_own_header():
    """`[[assessment.deduction]]` is refused at the line of that header, not at the [assessment] line above it."""
    line, text = at_assessment(3, "[[assessment.deductions]]", "[[assessment.deduction]]")
    problems = problems_of(text)
    assert len(problems) == 1
    assert problems[0].startswith("line ") and "assessment.deduction: unknown field (allowed: base, deductions)" in problems[0]
    assert problems[0].startswith(f"line {line}, "), f"expected line {line} (the misspelt header), got {problems[0]!r}"


def test_a_deduction_without_its_level_is_refused_at_its_header():
    """A deduction with no `level` reports it missing at the deduction's header line."""
    lines = BUILTIN.splitlines(keepends=True)
    assert lines[ASSESSMENT + 4].startswith("level = ")
    text = "".join(lines[:ASSESSMENT + 4] + lines[ASSESSMENT + 5:])
    assert problems_of(text) == [f"line {ASSESSMENT + 3}, assessment.deductions[0].level: is required"]


def test_assessment_problems_come_with_the_others():
    """Mistakes in [assessment] are reported together with the file's other problems, each at its line."""
    text = edited(29, "2015-07-01", "2014-12-20")
    text = edited(ASSESSMENT + 7, "missed = 2", "missed = -2", text)
    text = edited(ASSESSMENT + 22, '"demo_review"', '"demo_reveiw"', text)
    lines = sorted(int(re.match(r"line (\d+),", p)[1]) for p in problems_of(text))
    assert lines == [29, ASSESSMENT + 7, ASSESSMENT + 22]


# -- guards and triggers the campaign declares ------------------------------------------------------
@pytest.mark.parametrize(("line", "old", "new", "expected"), [
    pytest.param(84, '"cohort_accepted"', '"cohort_acepted"', "line 84, guards.provincial_demos_accepted.kind: unknown "
                 "kind 'cohort_acepted' (kinds: cohort_accepted, cohort_named_and_accepted, others_started)", id="kind"),
    pytest.param(85, '"provincial_demo"', '"provincial"', "line 85, guards.provincial_demos_accepted.cohort: unknown "
                 "cohort 'provincial' (declared: provincial_demo, county_demo, key, heavy_task)", id="cohort"),
    pytest.param(85, "cohort =", "cohorts =", "line 85, guards.provincial_demos_accepted.cohorts: unknown field "
                 "(allowed: cohort, kind)", id="parameter"),
    pytest.param(101, "submit_plan", "submit", "line 101, triggers.county.submit: unknown county trigger (triggers: "
                 "submit_plan, approve_demonstration, certify_key_compliance, certify_full_coverage)", id="trigger"),
    pytest.param(104, '"all_townships_accepted"', '"all_accepted"', "line 104, triggers.county.certify_full_coverage: "
                 "unknown county guard 'all_accepted'", id="guard-of-a-trigger"),
])
def test_a_bad_guard_or_trigger_names_its_line_and_field(line, old, new, expected):
    """A guard of an unknown kind or cohort, or a trigger that is not the machine's or names an unknown guard,
    is refused where it is written."""
    problems = problems_of(edited(line, old, new))
    assert problems[0].startswith(expected), problems


def test_a_guard_may_not_take_the_name_of_one_of_the_engines():
    """A campaign's guard named like one of the engine's own would shadow it: refused."""
    problems = problems_of(edited(83, "[guards.provincial_demos_accepted]", "[guards.review_note_given]"))
    assert problems[0].startswith("line 83, guards.review_note_given: a guard's name is lower-case letters, digits "
                                  "and _, and not one of the engine's own")


def test_a_trigger_checks_the_guards_its_campaign_names():
    """The county's certify_key_compliance checks what the campaign's [triggers.county] lists; a campaign that
    lists nothing for a trigger gets the engine's default guards."""
    c = load(BUILTIN)
    assert c.conditions("county", "certify_key_compliance") == ("key_townships_accepted", "other_townships_started")
    assert c.conditions("township", "apply") == ("checklist_complete",)
    plain = load(BUILTIN.replace('certify_key_compliance = ["key_townships_accepted", "other_townships_started"]\n', ""))
    assert plain.conditions("county", "certify_key_compliance") == ()
    kids = (Child("k1", "甲山镇", "not_started", frozenset()),)
    facts = Facts("county", "130821", "承德县", "key_compliance", frozenset(), c, dt.datetime(2015, 9, 1, tzinfo=SHANGHAI),
                  children=kids)
    assert machine.check(facts, "certify_key_compliance").unmet == ("其他乡镇尚未全面开展：甲山镇（未开展）",)
    facts.campaign = plain
    assert machine.check(facts, "certify_key_compliance").allowed
