"""The plan's rules as named guards: each one refuses with a reason an official can act on, and holds when met.

Tests are named `test_<guard>_refuses…` and `test_<guard>_satisfied…`; a meta-test at the end checks that
every guard in GUARDS has both.
"""

from __future__ import annotations

import datetime as dt

import pytest
from support import checklist_values

from anjian.states.campaign import Campaign, builtin_text, load
from anjian.states.guards import GUARDS, Child, Evidence, Facts, checklist, guard_of
from anjian.states.machines import SPECS
from anjian.workflow.clock import SHANGHAI

CAMPAIGN: Campaign = load(builtin_text("chengde-2014"))
NOW = dt.datetime(2015, 3, 1, 9, 0, tzinfo=SHANGHAI)


def guard(level: str, name: str):
    """A guard as the built-in campaign names it: the engine's own or one its file declares."""
    return guard_of(CAMPAIGN, level, name)


def every_guard() -> set[tuple[str, str]]:
    """The engine's guards and the built-in campaign's, by level."""
    return ({(level, name) for level, guards in GUARDS.items() for name in guards}
            | {(g.level, g.name) for g in CAMPAIGN.guards.values()})
KEY = frozenset({"key"})
HEAVY = frozenset({"heavy_task"})


def township(cohorts: frozenset[str] = frozenset(), values: dict[str, str] | None = None, **kw) -> Facts:
    """A township in `applied` with these cohorts and checklist values."""
    return Facts("township", "130821100", "下板城镇", kw.pop("state", "applied"), cohorts, CAMPAIGN, NOW,
                 checklist=dict(values or {}), **kw)


def county(children: tuple[Child, ...] = (), **kw) -> Facts:
    """承德县 with these townships."""
    return Facts("county", "130821", "承德县", kw.pop("state", "demonstration"), frozenset(), CAMPAIGN, NOW,
                 children=children, **kw)


def city(now: dt.datetime, dest: str) -> Facts:
    """承德市 about to enter `dest` at `now`."""
    return Facts("city", "130800", "承德市", "mobilization", frozenset(), CAMPAIGN, now, dest=dest)


def kid(name: str, state: str, *cohorts: str) -> Child:
    return Child(f"code-{name}", name, state, frozenset(cohorts))


def with_values(cohorts: frozenset[str] = frozenset(), **changes: str | None) -> dict[str, str]:
    """A complete checklist for these cohorts, with items changed (`None` removes one); `__` in a name stands for `.`."""
    values = checklist_values(cohorts)
    for key, value in changes.items():
        item = key.replace("__", ".")
        if value is None:
            values.pop(item, None)
        else:
            values[item] = value
    return values


checklist_complete = guard("township", "checklist_complete")


# -- checklist_complete -----------------------------------------------------------------------------
def test_checklist_complete_refuses_an_empty_checklist_naming_every_item():
    """An empty checklist is refused with one reason per applicable item, each naming the item id to record."""
    reasons = checklist_complete(township())
    applicable = [a.item.id for a in CAMPAIGN.applicable_items("township", frozenset())]
    assert len(reasons) == len(applicable)
    for item, reason in zip(applicable, reasons, strict=True):
        assert reason.endswith(f"（{item}）")
    assert "成立乡镇安全生产委员会，主任由政府主要负责同志担任：尚未落实（org.safety_committee）" in reasons
    assert not any("staff.full_time" in r or "staff.certified" in r for r in reasons)  # ≥ 0 is not an item
    assert "安全生产收发文件台账（负责人）：未填报（ledger.documents）" in reasons


def test_a_count_of_at_least_zero_does_not_block_an_ordinary_township():
    """Issue 13 point 5: an ordinary township with everything else filled is not held up by 专职安全监管人员 ≥ 0."""
    values = {k: v for k, v in checklist_values().items() if k not in ("staff.full_time", "staff.certified")}
    assert checklist_complete(township(frozenset(), values)) == []
    key_values = {k: v for k, v in checklist_values(KEY).items() if k != "staff.full_time"}
    assert any("staff.full_time" in r for r in checklist_complete(township(KEY, key_values)))


def test_applicable_items_leave_out_what_does_not_apply_to_the_cohorts():
    """applicable_items drops only_for items of other cohorts and counts whose minimum is 0; keeps the rest."""
    ordinary = {a.item.id: a.required for a in CAMPAIGN.applicable_items("township", frozenset())}
    key = {a.item.id: a.required for a in CAMPAIGN.applicable_items("township", KEY)}
    assert "staff.full_time" not in ordinary and "staff.certified" not in ordinary
    assert "org.separate_station" not in ordinary and "staff.chief" not in ordinary
    assert key["staff.full_time"] == 4 and "staff.certified" in key and key["org.separate_station"] is True
    assert ordinary["staff.part_time"] == 1 and "staff.information_officers" in ordinary
    assert ordinary["ledger.documents"] is None  # any text will do: still an item to fill


@pytest.mark.parametrize("cohorts", [frozenset(), KEY, HEAVY, frozenset({"key", "county_demo"}),
                                     frozenset({"provincial_demo"}), frozenset({"key", "heavy_task"})])
def test_checklist_complete_satisfied_by_a_complete_checklist(cohorts):
    """A checklist filled to each cohort's requirements leaves nothing unmet."""
    assert checklist_complete(township(cohorts, checklist_values(cohorts))) == []


def test_checklist_complete_refuses_a_flag_recorded_as_no():
    """A six-haves flag recorded as 否 is refused, naming the item."""
    assert checklist_complete(township(values=with_values(six__vehicle="否"))) == ["六有：有执法车辆：尚未落实（six.vehicle）"]


def test_checklist_complete_refuses_a_blank_ledger_keeper():
    """A ledger whose keeper is only whitespace counts as not filled."""
    reasons = checklist_complete(township(values=with_values(ledger__documents="  ")))
    assert reasons == ["安全生产收发文件台账（负责人）：未填报（ledger.documents）"]


def test_checklist_complete_refuses_a_key_township_with_three_full_time_staff():
    """A key township needs at least 4 full-time staff: 3 is refused with the minimum and the count it has."""
    reasons = checklist_complete(township(KEY, with_values(KEY, staff__full_time="3", staff__certified="3")))
    assert reasons == ["专职安全监管人员（人）：须不少于 4，现有 3（staff.full_time）"]


def test_checklist_complete_satisfied_by_a_key_township_with_four_full_time_staff():
    """Four certified full-time staff, a separate station and a full-time chief satisfy a key township."""
    values = with_values(KEY, staff__full_time="4", staff__certified="4")
    assert values["org.separate_station"] == "是" and values["staff.chief"] == "是"
    assert checklist_complete(township(KEY, values)) == []


def test_checklist_complete_refuses_a_key_township_without_a_separate_station():
    """A key township must set up its station separately (org.separate_station)."""
    assert checklist_complete(township(KEY, with_values(KEY, org__separate_station="否"))) == [
        "单独设立安监站：尚未落实（org.separate_station）"]
    assert checklist_complete(township(KEY, with_values(KEY, org__separate_station=None))) == [
        "单独设立安监站：尚未落实（org.separate_station）"]


def test_checklist_complete_refuses_a_key_township_without_a_full_time_chief():
    """A key township must have a full-time station chief (staff.chief)."""
    assert checklist_complete(township(KEY, with_values(KEY, staff__chief="否"))) == [
        "配备熟悉安全生产工作的专职安监站长：尚未落实（staff.chief）"]


def test_checklist_complete_refuses_a_heavy_task_township_with_one_full_time_member():
    """A heavy-task township needs at least 2 full-time staff."""
    reasons = checklist_complete(township(HEAVY, with_values(HEAVY, staff__full_time="1", staff__certified="1")))
    assert reasons == ["专职安全监管人员（人）：须不少于 2，现有 1（staff.full_time）"]


def test_checklist_complete_refuses_a_heavy_task_township_without_a_chief():
    """A heavy-task township needs a full-time chief, but not a separate station."""
    values = with_values(HEAVY, staff__chief=None)
    assert "org.separate_station" not in values
    assert checklist_complete(township(HEAVY, values)) == ["配备熟悉安全生产工作的专职安监站长：尚未落实（staff.chief）"]


def test_checklist_complete_satisfied_by_a_heavy_task_township_with_two_staff_and_a_chief():
    """Two certified full-time staff and a chief satisfy a heavy-task township without a separate station."""
    values = with_values(HEAVY, staff__full_time="2", staff__certified="2", staff__chief="是")
    assert checklist_complete(township(HEAVY, values)) == []


def test_checklist_complete_satisfied_by_an_ordinary_township_without_chief_station_or_full_time_staff():
    """An ordinary township needs neither a separate station, nor a full-time chief, nor full-time staff."""
    values = with_values(staff__full_time="0", staff__certified="0", staff__chief=None, org__separate_station=None)
    assert checklist_complete(township(frozenset(), values)) == []
    applies = {s.item for s in checklist(township(frozenset(), values))}
    assert "staff.chief" not in applies and "org.separate_station" not in applies


def test_checklist_complete_refuses_fewer_certificates_than_full_time_staff():
    """Every full-time member holds the entrusted law-enforcement certificate: certified ≥ full-time."""
    reasons = checklist_complete(township(KEY, with_values(KEY, staff__full_time="5", staff__certified="4")))
    assert reasons == ["取得委托执法资格证的专职人员（人）：须不少于 5，现有 4（staff.certified）"]
    reasons = checklist_complete(township(frozenset(), with_values(staff__full_time="2", staff__certified="1")))
    assert reasons == ["取得委托执法资格证的专职人员（人）：须不少于 2，现有 1（staff.certified）"]


def test_checklist_complete_refuses_fewer_information_officers_than_villages():
    """Every village or community needs one information officer: officers ≥ villages."""
    reasons = checklist_complete(township(values=with_values(staff__villages="12", staff__information_officers="11")))
    assert reasons == ["村（居）、社区安全生产信息员（人，每村1名）：须不少于 12，现有 11（staff.information_officers）"]


def test_checklist_complete_satisfied_by_one_information_officer_per_village():
    """As many information officers as villages (or more) satisfies the rule."""
    assert checklist_complete(township(values=with_values(staff__villages="12", staff__information_officers="12"))) == []
    assert checklist_complete(township(values=with_values(staff__villages="3", staff__information_officers="5"))) == []


def test_checklist_complete_refuses_an_unfilled_count():
    """A count never recorded is named as 未填报 rather than read as zero."""
    reasons = checklist_complete(township(values=with_values(staff__part_time=None)))
    assert reasons == ["兼职安全监管人员（人）：须不少于 1，未填报（staff.part_time）"]


# -- notes ------------------------------------------------------------------------------------------
def test_inspection_note_given_refuses_a_missing_or_blank_note():
    """Accepting a township needs the inspector's opinion written in --note."""
    g = guard("township", "inspection_note_given")
    assert g(township(note=None)) == ["须填写验收意见（--note）"]
    assert g(township(note=" \t ")) == ["须填写验收意见（--note）"]


def test_inspection_note_given_satisfied_by_a_note():
    """Any non-blank note is the inspection opinion."""
    assert guard("township", "inspection_note_given")(township(note="六项标准均达到")) == []


def test_rejection_reason_given_refuses_a_missing_note():
    """Rejecting needs the reason and the rectification demanded."""
    g = guard("township", "rejection_reason_given")
    assert g(township(note=None)) == ["须填写不予通过的原因和整改要求（--note）"]
    assert g(township(note="")) == ["须填写不予通过的原因和整改要求（--note）"]


def test_rejection_reason_given_satisfied_by_a_note():
    """A written reason lets the rejection through."""
    assert guard("township", "rejection_reason_given")(township(note="执法车辆未配备，限期一个月整改")) == []


def test_reinspection_finding_given_refuses_a_missing_note():
    """Revoking an acceptance needs what the re-inspection found."""
    g = guard("township", "reinspection_finding_given")
    assert g(township(state="accepted", note=None)) == ["须填写复查发现的问题（--note）"]


def test_reinspection_finding_given_satisfied_by_a_note():
    """A written finding lets the revocation through."""
    assert guard("township", "reinspection_finding_given")(township(state="accepted", note="台账缺失")) == []


def test_review_note_given_refuses_a_missing_note():
    """Approving a county's demonstration work needs the city's review summary."""
    assert guard("county", "review_note_given")(county(note="  ")) == ["须填写验收总结意见（--note）"]


def test_review_note_given_satisfied_by_a_note():
    """A written review summary lets the approval through."""
    assert guard("county", "review_note_given")(county(note="示范创建工作扎实")) == []


# -- inspector_is_not_applicant ---------------------------------------------------------------------
def test_inspector_is_not_applicant_refuses_the_applicant_accepting_their_own_application():
    """The official who applied for acceptance may not accept it, and the reason names them."""
    g = guard("township", "inspector_is_not_applicant")
    assert g(township(actor="chief", last_applicant="chief")) == [
        "验收须由申请人以外的人员进行（chief 提出了本次验收申请）"]


def test_inspector_is_not_applicant_satisfied_by_another_official():
    """Someone other than the applicant may accept; with no recorded applicant there is no conflict."""
    g = guard("township", "inspector_is_not_applicant")
    assert g(township(actor="inspector", last_applicant="chief")) == []
    assert g(township(actor="inspector", last_applicant=None)) == []


# -- county guards ----------------------------------------------------------------------------------
def test_plan_document_attached_refuses_without_evidence():
    """Submitting a county plan needs the plan document attached as evidence."""
    assert guard("county", "plan_document_attached")(county(state="mobilization")) == [
        "须附推进方案文件（--evidence 方案文件）"]


def test_plan_document_attached_satisfied_by_an_attached_file():
    """One attached file satisfies the rule."""
    facts = county(state="mobilization", evidence=(Evidence("承德县推进方案.pdf", "a" * 64),))
    assert guard("county", "plan_document_attached")(facts) == []


def test_county_checklist_complete_refuses_without_a_leadership_group():
    """A county must record its leadership group before it submits its plan; the optional meeting is not demanded."""
    reasons = guard("county", "county_checklist_complete")(county(state="mobilization"))
    assert reasons == ["成立乡镇安全监管规范化建设领导组织（组长及成立文件）：未填报（county.leadership_group）"]


def test_county_checklist_complete_satisfied_by_a_leadership_group():
    """The leadership group recorded is enough; the topical meeting flag is optional."""
    facts = county(state="mobilization", checklist={"county.leadership_group": "县长任组长"})
    assert guard("county", "county_checklist_complete")(facts) == []


def test_provincial_demos_accepted_refuses_while_a_provincial_demo_is_not_accepted():
    """A county's provincial demonstration township that is not accepted is named with its state."""
    facts = county((kid("高寺台镇", "building", "provincial_demo"), kid("甲山镇", "not_started")))
    assert guard("county", "provincial_demos_accepted")(facts) == ["省定示范乡镇尚未全部通过验收：高寺台镇（创建中）"]


def test_provincial_demos_accepted_satisfied_when_accepted_or_when_the_county_has_none():
    """Accepted provincial demos satisfy the rule, and a county without one owes nothing."""
    g = guard("county", "provincial_demos_accepted")
    assert g(county((kid("高寺台镇", "accepted", "provincial_demo"), kid("甲山镇", "not_started")))) == []
    assert g(county((kid("甲山镇", "not_started"),))) == []


def test_county_demos_accepted_refuses_a_county_with_no_demonstration_township():
    """With none designated, the county is told to designate 1–3 and how."""
    reasons = guard("county", "county_demos_accepted")(county((kid("甲山镇", "accepted", "key"),)))
    assert reasons == ["县区示范重点乡镇须确定 1–3 个，现有 0 个（anjian designate 乡镇 county_demo）"]


@pytest.mark.parametrize("count", [1, 2, 3])
def test_county_demos_accepted_satisfied_by_one_to_three_accepted(count):
    """One, two or three designated demonstration townships, all accepted, satisfy the rule."""
    kids = tuple(kid(f"示范{n}", "accepted", "key", "county_demo") for n in range(count))
    assert guard("county", "county_demos_accepted")(county((*kids, kid("甲山镇", "building")))) == []


@pytest.mark.parametrize("count", [1, 2, 3])
def test_county_demos_accepted_refuses_while_one_is_not_accepted(count):
    """Among 1–3 designated, one still rectifying is named with its state."""
    kids = (*(kid(f"示范{n}", "accepted", "key", "county_demo") for n in range(count - 1)),
            kid("下板城镇", "rectifying", "key", "county_demo"))
    assert guard("county", "county_demos_accepted")(county(kids)) == [
        "县区示范重点乡镇尚未全部通过验收：下板城镇（整改中）"]


def test_county_demos_accepted_refuses_four_designated():
    """Four designated demonstration townships exceed the plan's 1–3, even when all are accepted."""
    kids = tuple(kid(f"示范{n}", "accepted", "key", "county_demo") for n in range(4))
    assert guard("county", "county_demos_accepted")(county(kids)) == ["县区示范重点乡镇至多 3 个，现有 4 个"]


def test_key_townships_accepted_refuses_while_a_key_township_is_not_accepted():
    """A key township still applying is named; ordinary townships do not count for this rule."""
    facts = county((kid("下板城镇", "applied", "key"), kid("上板城镇", "accepted", "key"), kid("甲山镇", "not_started")),
                   state="key_compliance")
    assert guard("county", "key_townships_accepted")(facts) == ["安全生产重点乡镇尚未全部通过验收：下板城镇（已申请验收）"]


def test_key_townships_accepted_satisfied_when_every_key_township_is_accepted():
    """All key townships accepted satisfies the rule whatever the ordinary ones do."""
    facts = county((kid("下板城镇", "accepted", "key"), kid("甲山镇", "not_started")), state="key_compliance")
    assert guard("county", "key_townships_accepted")(facts) == []


def test_key_townships_accepted_refuses_listing_five_then_the_total():
    """Many late townships are listed five by name, then counted, so the reason stays readable."""
    kids = tuple(kid(f"镇{n}", "building", "key") for n in range(7))
    (reason,) = guard("county", "key_townships_accepted")(county(kids, state="key_compliance"))
    assert reason.startswith("安全生产重点乡镇尚未全部通过验收：镇0（创建中）、")
    assert "镇4（创建中）" in reason and "镇5" not in reason
    assert reason.endswith(" 等共 7 个")


def test_other_townships_started_refuses_an_ordinary_township_not_started():
    """Every township outside the key list must have started by the key-compliance milestone."""
    facts = county((kid("甲山镇", "not_started"), kid("孟家院乡", "building"), kid("下板城镇", "accepted", "key")),
                   state="key_compliance")
    assert guard("county", "other_townships_started")(facts) == ["其他乡镇尚未全面开展：甲山镇（未开展）"]


def test_other_townships_started_satisfied_when_every_other_township_started():
    """Ordinary townships in any state past not_started satisfy it; key townships are judged by their own rule."""
    kids = (kid("甲山镇", "building"), kid("孟家院乡", "rectifying", "heavy_task"), kid("下板城镇", "not_started", "key"))
    assert guard("county", "other_townships_started")(county(kids, state="key_compliance")) == []


def test_key_townships_accepted_and_other_townships_started_together_decide_key_compliance():
    """Certifying key compliance needs both rules: accepted key townships and started other townships."""
    conditions = CAMPAIGN.conditions("county", "certify_key_compliance")
    assert conditions == ("key_townships_accepted", "other_townships_started")
    good = county((kid("下板城镇", "accepted", "key"), kid("甲山镇", "building")), state="key_compliance")
    idle = county((kid("下板城镇", "accepted", "key"), kid("甲山镇", "not_started")), state="key_compliance")
    assert [guard("county", c)(good) for c in conditions] == [[], []]
    assert [bool(guard("county", c)(idle)) for c in conditions] == [False, True]


def test_all_townships_accepted_refuses_while_any_township_is_not_accepted():
    """Full coverage is refused while any township, of any cohort, is not accepted."""
    facts = county((kid("下板城镇", "accepted", "key"), kid("甲山镇", "rectifying")), state="full_coverage")
    assert guard("county", "all_townships_accepted")(facts) == ["尚有乡镇未达标：甲山镇（整改中）"]


def test_all_townships_accepted_satisfied_when_every_township_is_accepted():
    """Every township accepted satisfies full coverage."""
    facts = county((kid("下板城镇", "accepted", "key"), kid("甲山镇", "accepted")), state="full_coverage")
    assert guard("county", "all_townships_accepted")(facts) == []


# -- stage_date_reached -----------------------------------------------------------------------------
STAGE_DAY_CASES = [
    # (now, allowed): the stage starts on 2015-01-01 in Shanghai
    pytest.param(dt.datetime(2014, 12, 31, 23, 59, tzinfo=SHANGHAI), False, id="2014-12-31T23:59+08:00"),
    pytest.param(dt.datetime(2014, 12, 31, 15, 59, 59, tzinfo=dt.UTC), False, id="2014-12-31T15:59:59Z"),
    pytest.param(dt.datetime(2015, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=9))), False,
                 id="2015-01-01T00:30+09:00"),
    pytest.param(dt.datetime(2015, 1, 1, 0, 0, tzinfo=SHANGHAI), True, id="2015-01-01T00:00+08:00"),
    pytest.param(dt.datetime(2014, 12, 31, 16, 0, tzinfo=dt.UTC), True, id="2014-12-31T16:00Z"),
    pytest.param(dt.datetime(2014, 12, 31, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))), True,
                 id="2014-12-31T12:00-05:00"),
]


@pytest.mark.parametrize(("now", "allowed"), STAGE_DAY_CASES)
def test_stage_date_reached_counts_the_day_in_shanghai(now, allowed):
    """The stage starts on its first calendar day in Asia/Shanghai, whatever offset `now` is written in."""
    reasons = guard("city", "stage_date_reached")(city(now, "demonstration"))
    assert (reasons == []) is allowed
    if not allowed:
        assert reasons == ["2015-01-01 起方可进入（今天是 2014-12-31）"]


def test_stage_date_reached_refuses_the_day_before_a_stage_starts():
    """The evening before the key-compliance stage the city may not enter it, and is told the start day."""
    facts = city(dt.datetime(2015, 6, 30, 23, 59, tzinfo=SHANGHAI), "key_compliance")
    assert guard("city", "stage_date_reached")(facts) == ["2015-07-01 起方可进入（今天是 2015-06-30）"]


def test_stage_date_reached_satisfied_on_and_after_the_start_day():
    """On the stage's first day, and any day later, the city may enter it."""
    g = guard("city", "stage_date_reached")
    assert g(city(dt.datetime(2015, 7, 1, 0, 0, tzinfo=SHANGHAI), "key_compliance")) == []
    assert g(city(dt.datetime(2016, 3, 1, 0, 0, tzinfo=SHANGHAI), "key_compliance")) == []


def test_stage_date_reached_closes_the_campaign_the_day_after_the_last_stage_ends():
    """`closed` has no stage of its own: it may be entered from the day after full coverage ends (2017-01-01)."""
    g = guard("city", "stage_date_reached")
    assert g(city(dt.datetime(2016, 12, 31, 23, 59, tzinfo=SHANGHAI), "closed")) == [
        "2017-01-01 起方可进入（今天是 2016-12-31）"]
    assert g(city(dt.datetime(2016, 12, 31, 16, 0, tzinfo=dt.UTC), "closed")) == []


# -- meta -------------------------------------------------------------------------------------------
def test_every_guard_is_used_by_a_transition_or_a_milestone_rule():
    """No guard, the engine's or the campaign's, is dead: each is a condition of some transition or named by a milestone rule."""
    used = {(level, c) for level, spec in SPECS.items() for t in spec.triggers for c in CAMPAIGN.conditions(level, t)}
    used |= {(r.level, g) for m in CAMPAIGN.milestones for r in m.rules for g in r.guards}
    declared = every_guard()
    assert declared - used == set()
    assert used - declared == set()


def test_every_guard_has_a_refusing_and_a_satisfied_test():
    """Each guard, the engine's or the campaign's, has a test here showing it refuse and one showing it satisfied."""
    names = [n for n in globals() if n.startswith("test_")]
    missing = [f"{g}: {kind}" for _level, g in sorted(every_guard()) for kind in ("refuses", "satisfied")
               if not any(n.startswith(f"test_{g}_{kind}") for n in names)]
    assert missing == []
