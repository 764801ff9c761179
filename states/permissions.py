"""Who may do what, as data next to the machines. Deny by default: an action not listed for a role
is refused. Every permission holds only within the official's jurisdiction — their own unit and the
units below it (a county official acts on the county and its townships only)."""

from __future__ import annotations

from anjian.states.labels import ROLE_NAMES

ROLES = ROLE_NAMES  # role -> its name (市安委办 …), translated when looked up

# role -> the levels of unit an official of that role may be posted at. `anjian user add` refuses any other
# post (exit 2); an official stored otherwise (by an older version) is refused whenever they act (exit 4),
# never guessed at, until an admin disables them and registers them at the right unit.
ANYWHERE = frozenset({"province", "city", "county", "township"})
ROLE_LEVELS: dict[str, frozenset[str]] = {
    "township_chief": frozenset({"township"}),
    "county_official": frozenset({"county"}),
    "city_office": frozenset({"city"}),
    "city_inspector": frozenset({"city"}),
    "admin": ANYWHERE,
}


def fits(role: str, level: str | None) -> bool:
    """Whether an official of `role` may be posted at a unit of `level`."""
    return level in ROLE_LEVELS.get(role, frozenset())

# (level, trigger) -> roles that may fire it
TRIGGERS: dict[tuple[str, str], frozenset[str]] = {
    ("township", "start"): frozenset({"township_chief", "county_official", "city_office"}),
    ("township", "apply"): frozenset({"township_chief", "county_official", "city_office"}),
    ("township", "resubmit"): frozenset({"township_chief", "county_official", "city_office"}),
    ("township", "accept"): frozenset({"city_inspector", "county_official"}),
    ("township", "reject"): frozenset({"city_inspector", "county_official"}),
    ("township", "revoke"): frozenset({"city_inspector", "county_official"}),
    ("county", "submit_plan"): frozenset({"county_official"}),
    ("county", "approve_demonstration"): frozenset({"city_inspector", "city_office"}),
    ("county", "certify_key_compliance"): frozenset({"city_inspector", "city_office"}),
    ("county", "certify_full_coverage"): frozenset({"city_inspector", "city_office"}),
    ("city", "begin_demonstration"): frozenset({"city_office"}),
    ("city", "begin_key_compliance"): frozenset({"city_office"}),
    ("city", "begin_full_coverage"): frozenset({"city_office"}),
    ("city", "close"): frozenset({"city_office"}),
}

# Who may move the city into a stage by hand, in a campaign of any stages (the scheduler does on the date).
CITY_STAGES = frozenset({"city_office"})


def trigger_roles(level: str | None, trigger: str, campaign=None) -> frozenset[str]:
    """The roles that may fire `trigger` on a unit of `level` in `campaign` (else in the campaign in use):
    the `by` its file gives the transition, else the engine's table above; nobody for a trigger the
    campaign's machine does not have."""
    from anjian.states.machines import of

    spec = of(level, campaign)
    if spec is None or trigger not in spec.triggers:
        return frozenset()
    declared = spec.roles(trigger)
    if declared is not None:
        return declared
    if level == "city":
        return CITY_STAGES
    return TRIGGERS.get((level, trigger), frozenset())


# level of the unit whose checklist is recorded -> roles that may record it
RECORD: dict[str, frozenset[str]] = {
    "township": frozenset({"township_chief", "county_official", "city_office"}),
    "county": frozenset({"county_official", "city_office"}),
}

# Who may designate townships into a cohort is the campaign's to say (each cohort's `designated_by`).

# Roles whose officials open a unit in full (`show`, a unit's web page) only within their jurisdiction: a
# township's chief sees their own township's file, not their neighbours'. Every other role reads the whole
# campaign (the lists and figures of `status`, `units` and the reports are not limited by this).
SEES_OWN_ONLY = frozenset({"township_chief"})

# other actions -> roles (jurisdiction applies where the action names a unit)
ACTIONS: dict[str, frozenset[str]] = {
    "contact": frozenset({"city_office", "county_official", "township_chief", "admin"}),
    "calendar": frozenset({"city_office", "admin"}),
    "users": frozenset({"admin"}),
    # who may list officials (their names, posts and OS accounts): the offices that organize people, each
    # within its jurisdiction; a chief or an inspector has no need of the directory
    "user_list": frozenset({"admin", "city_office", "county_official"}),
    "init": frozenset({"admin"}),
    "campaign": frozenset({"admin"}),  # add a campaign beside the first
    "checkpoint": frozenset({"admin", "city_office"}),
    "circular": frozenset({"city_office"}),  # the city's safety committee office issues circulars (通报)
    "effective": frozenset({"city_office", "city_inspector"}),  # attest a paper record entered late (补录)
    "notices": frozenset({"city_office", "admin"}),  # settling notices a killed pass left ambiguous
}

# The verdicts on a township's application: acceptance, rejection and revocation. They come from above the
# township (TRIGGERS gives them to county officials and city inspectors alone) and from outside the
# application they judge (the plan: acceptance is done by someone other than the applicant):
# - by person: never from anyone who applied for the township or resubmitted it (a township's applications
#   are one file: a rejection or a revocation sends it back to be resubmitted) — the guard
#   `inspector_is_not_applicant`, which every verdict trigger's transition names;
# - by line: never from the body any of them applied from, a body being one role at one unit (a county's
#   officials are one body; the city's office and its inspectors are two) — `authz.not_own_unit`.
INSPECTION_TRIGGERS = frozenset({"accept", "reject", "revoke"})
