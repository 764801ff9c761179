"""The one home of the words officials read for the engine's identifiers: cohorts, states, triggers,
milestone statuses, levels and roles, and the one place that reads them back when an official types them.

The maps hold English message ids and translate on every lookup (`Words`), so ``TRIGGER_NAMES["apply"]``
is 申请验收 in Chinese (the default) and "apply for acceptance" in English. `parse` accepts an identifier
(``key``, ``county-demo``), its Chinese name (重点, 安全生产重点乡镇) or its English name, and returns the
identifier."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache

from anjian.i18n import N_, _, language
from anjian.i18n import current as language_now


class Words(Mapping):
    """identifier -> the word officials read, translated when it is looked up."""

    def __init__(self, ids: dict):
        self._ids = dict(ids)

    def __getitem__(self, key):
        return _(self._ids[key])

    def __iter__(self) -> Iterator:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def message_id(self, key) -> str:
        return self._ids[key]


class CampaignWords(Mapping):
    """identifier -> the word officials read for one of the campaign's own things (its cohorts, its
    milestones' short names), as the campaign in use declares it, in the current language. The campaign
    in use is the one `use_campaign` set for this context (a command, a request), else the built-in one."""

    def __init__(self, table: str, short: bool):
        self._table, self._short = table, short

    def _entries(self) -> Mapping:
        campaign = current_campaign()
        return campaign.cohorts if self._table == "cohorts" else {m.id: m for m in campaign.milestones}

    def __getitem__(self, key):
        entry = self._entries()[key]
        if self._table == "cohorts":
            return entry.word(self._short, language_now())
        word = entry.word(language_now())
        if word is None:
            raise KeyError(key)
        return word

    def __iter__(self) -> Iterator:
        if self._table == "cohorts":
            return iter(self._entries())
        return (k for k, m in self._entries().items() if m.word(language_now()) is not None)

    def __len__(self) -> int:
        return sum(1 for _k in self)


class MachineWords(Words):
    """The words of states ((level, id) keys) or triggers (id keys): the engine's, translated, and those a
    campaign's file declares for its own machines (its stages, its `[machines.county]`), which win."""

    def __init__(self, ids: dict, kind: str):
        super().__init__(ids)
        self._kind = kind

    def _key(self, key) -> tuple:
        return (self._kind, *key) if isinstance(key, tuple) else (self._kind, key)

    def _campaign(self):
        try:
            return current_campaign()
        except LookupError:
            return None

    def __getitem__(self, key):
        campaign = self._campaign()
        word = campaign.word(self._key(key), language_now()) if campaign is not None else None
        return word if word is not None else super().__getitem__(key)

    def __iter__(self) -> Iterator:
        """The states (or triggers) of the campaign in use's machines: the engine's it keeps, then its own."""
        campaign = self._campaign()
        if campaign is None:
            return iter(self._ids)
        own = [k[1:] if len(k) > 2 else k[1] for k in campaign.words if k[0] == self._kind]
        return iter(k for k in dict.fromkeys([*self._ids, *own]) if self._in(campaign, k))

    def _in(self, campaign, key) -> bool:
        if self._kind == "state":
            spec = campaign.machines.get(key[0])
            return spec is not None and key[1] in spec.states
        return any(key in spec.triggers for spec in campaign.machines.values())

    def __len__(self) -> int:
        return sum(1 for _k in self)

    def __contains__(self, key) -> bool:
        campaign = self._campaign()
        return key in self._ids or campaign is not None and self._key(key) in campaign.words


_campaign: ContextVar = ContextVar("anjian_campaign", default=None)


def words_in_use():
    """The campaign `use_campaign` set for this context, or None (the built-in one's words)."""
    return _campaign.get()


def use_campaign(campaign) -> None:
    """Name things as `campaign` does for the rest of this context (loading the campaign in force does it)."""
    _campaign.set(campaign)


@contextmanager
def campaign_words(campaign) -> Iterator[None]:
    """Name things as `campaign` does inside the block."""
    token = _campaign.set(campaign)
    try:
        yield
    finally:
        _campaign.reset(token)


# The built-in campaign, loaded when first asked for: `states.campaign` puts its loader here when it is
# imported (this module, which it imports, may not import it back).
_builtin: list = []


def register_builtin(loader):
    cached = cache(loader)
    _builtin[:] = [cached]
    return cached


def current_campaign():
    """The campaign whose words are in use: the one set for this context, else the built-in one."""
    campaign = _campaign.get()
    if campaign is not None:
        return campaign
    if not _builtin:
        raise LookupError("no campaign in use: import anjian.states.campaign first")
    return _builtin[0]()


def cohort_ids() -> tuple[str, ...]:
    """The cohorts of the campaign in use, in the order its file declares them (the order tables show)."""
    return current_campaign().cohort_ids


def milestone_cohort_ids() -> tuple[str, ...]:
    """The cohorts of the campaign in use that count townships toward a milestone."""
    return current_campaign().milestone_cohorts


COHORT_NAMES = CampaignWords("cohorts", short=False)
COHORT_SHORT = CampaignWords("cohorts", short=True)
# A milestone's short name for a table's column, where the campaign gives one; else its name, cut short.
MILESTONE_SHORT = CampaignWords("milestones", short=True)

LEVEL_NAMES = Words({"province": N_("province"), "city": N_("city"), "county": N_("county"),
                     "township": N_("township")})

# A milestone's status as `show`, the dossier and the tables print it.
MILESTONE_STATUS = Words({"met": N_("met"), "pending": N_("not yet due"), "overdue": N_("overdue")})

STATE_NAMES = MachineWords({
    ("township", "not_started"): N_("not started"),
    ("township", "building"): N_("building"),
    ("township", "applied"): N_("applied for acceptance"),
    ("township", "rectifying"): N_("rectifying"),
    ("township", "accepted"): N_("up to standard"),
    ("county", "mobilization"): N_("mobilizing"),
    ("county", "demonstration"): N_("demonstration"),
    ("county", "key_compliance"): N_("key townships up to standard"),
    ("county", "full_coverage"): N_("all townships under way"),
    ("county", "standardized"): N_("all townships up to standard"),
    ("city", "mobilization"): N_("mobilization stage"),
    ("city", "demonstration"): N_("demonstration stage"),
    ("city", "key_compliance"): N_("key-township stage"),
    ("city", "full_coverage"): N_("full-coverage stage"),
    ("city", "closed"): N_("closed"),
}, "state")

TRIGGER_NAMES = MachineWords({
    "start": N_("start building"),
    "apply": N_("apply for acceptance"),
    "accept": N_("accept"),
    "reject": N_("reject"),
    "resubmit": N_("resubmit after rectifying"),
    "revoke": N_("revoke after re-inspection"),
    "submit_plan": N_("submit the plan"),
    "approve_demonstration": N_("approve the demonstration"),
    "certify_key_compliance": N_("certify key townships"),
    "certify_full_coverage": N_("certify all townships"),
    "begin_demonstration": N_("begin the demonstration stage"),
    "begin_key_compliance": N_("begin the key-township stage"),
    "begin_full_coverage": N_("begin the full-coverage stage"),
    "close": N_("close"),
}, "trigger")

ROLE_NAMES = Words({
    "city_office": N_("city safety committee office"),
    "city_inspector": N_("city acceptance inspector"),
    "county_official": N_("county official"),
    "township_chief": N_("township station chief"),
    "admin": N_("administrator"),
})


def state_name(level: str, state: str | None) -> str:
    """The name of a state in the current language, or the identifier where none is declared."""
    if state is None:
        return "—"
    return STATE_NAMES.get((level, state), state)


def required_words(kind: str, required: object) -> str:
    """What a checklist item requires, as `show` and the dossier print it."""
    if kind == "flag":
        return _("required") if required else _("optional")
    if kind == "count":
        return f"≥ {required}"
    return _("to be filled in")


def value_words(value: object) -> str:
    """A checklist item's recorded value, as `show` and the dossier print it."""
    if value is None:
        return _("not recorded")
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return str(value)


def _fold(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split()).casefold().replace("-", "_")


def spellings(words: Words, key, *more: Words) -> set[str]:
    """Every way `key` may be typed: its identifier, and its name in each language (full and short)."""
    ident = key[1] if isinstance(key, tuple) else key
    out = {_fold(ident)}
    for table in (words, *more):
        if key not in table:
            continue
        for lang in ("zh", "en"):
            with language(lang):
                out.add(_fold(table[key]))
    return out


def parse(words: Words, text: str, *more: Words, level: str | None = None):
    """The identifier `text` names in `words` (by identifier, Chinese or English name, or a short name in
    `more`), or None. For STATE_NAMES give `level` to read the state of that level only."""
    wanted = _fold(text or "")
    if not wanted:
        return None
    for key in words:
        if level is not None and isinstance(key, tuple) and key[0] != level:
            continue
        if wanted in spellings(words, key, *more):
            return key[1] if isinstance(key, tuple) else key
    return None


def parse_trigger(text: str) -> str | None:
    return parse(TRIGGER_NAMES, text)


def parse_cohort(text: str) -> str | None:
    return parse(COHORT_NAMES, text, COHORT_SHORT)


def parse_state(text: str, level: str | None = None) -> str | None:
    return parse(STATE_NAMES, text, level=level)


def parse_role(text: str) -> str | None:
    return parse(ROLE_NAMES, text)


def parse_level(text: str) -> str | None:
    return parse(LEVEL_NAMES, text)


def choices(words: Words, *more: Words) -> str:
    """The accepted inputs, for a refusal: 'key（重点）、…'."""
    return "、".join(f"{k[1] if isinstance(k, tuple) else k}（{(more[0] if more and k in more[0] else words)[k]}）"
                    for k in words)
