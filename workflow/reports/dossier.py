"""A unit's dossier (验收材料): what an inspector brings to an acceptance visit — who the unit is, where
it stands, its checklist item by item, every evidence file with its SHA-256 and whether the copy in
the evidence store still matches, the full history from the audit log, and a block to sign.

`build` gathers the data (a frozen Dossier); `markdown` and `html` render it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from anjian.i18n import _
from anjian.states.guards import ItemStatus
from anjian.states.labels import (
    COHORT_NAMES,
    MILESTONE_STATUS,
    TRIGGER_NAMES,
    required_words,
    state_name,
    value_words,
)
from anjian.states.milestones import MilestoneStatus
from anjian.workflow.clock import SHANGHAI, shown
from anjian.workflow.errors import BadInput
from anjian.workflow.store.db import Database
from anjian.workflow.views.show import ShowResult
from anjian.workflow.views.units import UnitRow

ACTION_NAMES = {
    **TRIGGER_NAMES, "record": "填报清单", "designate": "列入类别", "undesignate": "移出类别", "denied": "操作被拒绝",
    "contact_add": "添加联系人", "contact_remove": "删除联系人", "user_add": "添加用户", "user_enable": "启用用户",
    "user_disable": "停用用户", "registry_load": "载入区划", "campaign_load": "载入方案", "circular": "印发通报",
}
STORED_WORDS = {"ok": "存档完好，哈希一致", "altered": "存档文件已被改动，哈希不符", "missing": "证据库中没有存档",
                "invalid": "记录的哈希无效"}
_SHA = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class EvidenceCheck:
    """One evidence file named in the audit log, and the state of its stored copy."""

    seq: int
    at: str
    action: str
    path: str
    sha256: str
    size: int | None
    stored: str  # ok | altered | missing | invalid

    @property
    def name(self) -> str:
        return Path(self.path).name or self.path

    @property
    def words(self) -> str:
        return STORED_WORDS[self.stored]


@dataclass(frozen=True)
class Event:
    """One audit row of the unit, as an official reads it."""

    seq: int
    at: str  # Asia/Shanghai, to the second
    actor: str
    action: str
    action_name: str
    from_state: str
    to_state: str
    note: str
    detail: str
    evidence: int


@dataclass(frozen=True)
class Dossier:
    unit: ShowResult
    title: str
    campaign: str
    issuer: str
    now: dt.datetime
    areas: list[tuple[str, list[ItemStatus]]]  # area name, its checklist items (from `show`)
    evidence: list[EvidenceCheck]
    history: list[Event]
    children: list[UnitRow]
    store: str
    drill: bool = False  # from a drill (演练) database: the page says so

    @property
    def missing(self) -> list[ItemStatus]:
        return [i for _, items in self.areas for i in items if not i.ok]

    @property
    def checked(self) -> int:
        return sum(len(items) for _, items in self.areas)


def stored_state(store: Path | None, sha256: str) -> str:
    """Whether the evidence store holds the file under its hash, and whether its bytes still hash so."""
    if not _SHA.fullmatch(sha256 or ""):
        return "invalid"
    target = store / sha256[:2] / sha256 if store is not None else None
    if target is None or not target.is_file():
        return "missing"
    digest = hashlib.sha256()
    with target.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return "ok" if digest.hexdigest() == sha256 else "altered"


def build(db: Database, unit: str, now: dt.datetime, evidence_dir: Path | None = None) -> Dossier:
    """The dossier of one township or county (its checklist, evidence, history) as of `now`."""
    from anjian.workflow.services.registry import campaign_in_force, drill_in
    from anjian.workflow.store import audit
    from anjian.workflow.views.show import show
    from anjian.workflow.views.units import units

    res = show(db, unit, now)
    if res.level not in ("township", "county"):
        from anjian.states.labels import LEVEL_NAMES

        raise BadInput(_("{name} ({code}) is a {level}: a dossier is of a township or a county "
                         "(for the whole city: anjian report progress)").format(
            name=res.name, code=res.code, level=LEVEL_NAMES.get(res.level, res.level)))
    with db.read() as session:
        campaign = campaign_in_force(session)
        rows = audit.history(session, [res.code])
        drill = drill_in(session)
    labels = {i.id: i.label for lvl in ("township", "county") for i in campaign.items(lvl)}
    areas: dict[str, list[ItemStatus]] = {}
    for item in res.checklist:
        areas.setdefault(campaign.areas.get(item.area, item.area), []).append(item)
    checked: dict[str, str] = {}
    evidence, history = [], []
    for r in rows:
        for f in r.evidence:
            sha = str(f.get("sha256", ""))
            if sha not in checked:
                checked[sha] = stored_state(evidence_dir, sha)
            evidence.append(EvidenceCheck(r.seq, shown(r.at), ACTION_NAMES.get(r.trigger, r.trigger), str(f.get("path", "")),
                                          sha, f.get("size"), checked[sha]))
        by = r.detail.get("by")
        history.append(Event(r.seq, shown(r.effective_at), f"{r.actor}（{by} 代为操作）" if by else r.actor, r.trigger,
                             ACTION_NAMES.get(r.trigger, r.trigger), _state(res.level, r.from_state),
                             _state(res.level, r.to_state), r.note or "", _detail(r, labels), len(r.evidence)))
    children = units(db, now, level="township", county=res.code) if res.level != "township" else []
    title = (f"{res.name}安全监管规范化建设验收材料" if res.level == "township"
             else f"{res.name}乡镇安全监管规范化建设工作档案")
    return Dossier(res, title, campaign.title, campaign.issuer, now,
                   list(areas.items()), evidence, history, children, str(evidence_dir or ""), drill)


def _state(level: str, state: str | None) -> str:
    return state_name(level, state) if state else ""


def _detail(r, labels: dict[str, str]) -> str:
    late = f"补录（{r.detail['effective']} 的纸质记录，录入于 {shown(r.at)}）" if r.detail.get("effective") else ""
    return "；".join(x for x in (late, _what(r, labels)) if x)


def _what(r, labels: dict[str, str]) -> str:
    d = r.detail
    if r.trigger == "record":
        item = d.get("item", "")
        return f"{labels.get(item, item)}：{d.get('value')}" + (f"（原为 {d['previous']}）" if d.get("previous") else "")
    if r.trigger in ("designate", "undesignate"):
        return COHORT_NAMES.get(d.get("cohort", ""), d.get("cohort", ""))
    if r.trigger == "denied":
        return f"{d.get('attempted', '')}：{d.get('reason', '')}"
    return ""


# -- words -------------------------------------------------------------------------------------------
def milestone_words(m: MilestoneStatus) -> str:
    days = {"pending": f"，剩 {m.days} 天", "overdue": f"，逾期 {m.days} 天"}.get(m.status, "")
    return MILESTONE_STATUS[m.status] + days


def _identity(d: Dossier) -> list[tuple[str, str]]:
    u = d.unit
    rows = [("单位", f"{u.name}（{u.code}）"), ("隶属", u.path), ("级别", {"township": "乡镇", "county": "县区"}.get(u.level, u.level)),
            ("当前状态", f"{u.state_name}（版本 {u.version}）")]
    if u.level == "township":
        rows.append(("类别", "、".join(COHORT_NAMES[c] for c in u.cohorts) or "一般乡镇"))
    rows.append(("材料生成时间", f"{d.now.astimezone(SHANGHAI):%Y-%m-%d %H:%M}（北京时间）"))
    return rows


# -- Markdown ----------------------------------------------------------------------------------------
def _cell(v: object) -> str:
    text = "—" if v is None or v == "" else str(v)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[object]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|",
            *("| " + " | ".join(_cell(v) for v in r) + " |" for r in rows)]


def markdown(d: Dossier) -> str:
    """The dossier as Markdown, in the order of the visit: who, what is in place, proof, history, signatures."""
    from anjian.workflow.reports.progress import _drill_banner

    u = d.unit
    out = [f"> **{_drill_banner(True)}**", ""] if d.drill else []
    out += [f"# {d.title}", "", f"{d.campaign} · {d.issuer}", ""]
    out += _table(["项目", "内容"], [[k, v] for k, v in _identity(d)])
    if u.milestones:
        out += ["", "## 时间节点", ""]
        out += _table(["节点", "期限", "状态"], [[m.name, m.deadline.isoformat(), milestone_words(m)] for m in u.milestones])
    if d.areas:
        out += ["", f"## 规范化建设清单（{d.checked - len(d.missing)}/{d.checked} 项达标）", ""]
        for area, items in d.areas:
            out += [f"### {area}", ""]
            out += _table(["", "项目", "要求", "现状", "代码"], [
                ["✓" if i.ok else "✗ 缺", i.label, required_words(i.kind, i.required), value_words(i.value), i.item] for i in items])
            out.append("")
        if d.missing:
            out += ["**尚缺：** " + "；".join(i.label for i in d.missing), ""]
    if d.children:
        out += ["", f"## 下辖乡镇（{len(d.children)} 个）", "",
                "、".join(f"{state_name('township', k)} {v}" for k, v in sorted(u.children.items())), ""]
        out += _table(["代码", "乡镇", "状态", "类别", "逾期节点"], [
            [c.code, c.name, state_name("township", c.state), "、".join(COHORT_NAMES[x] for x in c.cohorts),
             "、".join(c.overdue or [])] for c in d.children])
    out += ["", f"## 证据文件（{len(d.evidence)} 个）", ""]
    if d.evidence:
        out += _table(["审计序号", "时间", "事项", "文件", "SHA-256", "大小（字节）", "存档核验"], [
            [e.seq, e.at, e.action, e.name, f"`{e.sha256}`", e.size, e.words] for e in d.evidence])
        out += ["", f"存档位置：{d.store}" if d.store else "存档位置：未配置"]
    else:
        out.append("（无）")
    out += ["", f"## 办理记录（审计日志，{len(d.history)} 条）", ""]
    out += _table(["序号", "时间", "操作人", "操作", "状态变化", "说明"], [
        [e.seq, e.at, e.actor, f"{e.action_name}（{e.action}）", _change(e),
         "；".join(x for x in (e.detail, e.note, f"附件 {e.evidence} 个" if e.evidence else "") if x)] for e in d.history])
    town = u.level == "township"
    out += ["", f"## {'验收' if town else '审核'}意见与签字", "", f"{'验收' if town else '审核'}意见：", "", "　", "",
            f"{'验收组成员' if town else '审核人员'}（签字）：____________________　　日期：______年____月____日", "",
            f"{'被验收单位负责人' if town else '县区负责人'}（签字）：____________________　　日期：______年____月____日", ""]
    return "\n".join(out)


def _change(e: Event) -> str:
    if e.from_state and e.to_state and e.from_state != e.to_state:
        return f"{e.from_state} → {e.to_state}"
    return e.to_state or ""


# -- HTML ----------------------------------------------------------------------------------------------
def html(d: Dossier) -> str:
    """The dossier as one printable page (inline CSS, no script, no external reference)."""
    from anjian.workflow.reports.progress import _drill_banner, render_template

    u = d.unit
    return render_template(
        "dossier.html.j2", title=d.title, campaign=d.campaign, issuer=d.issuer, identity=_identity(d), level=u.level,
        milestones=[{"name": m.name, "deadline": m.deadline.isoformat(), "words": milestone_words(m), "status": m.status}
                    for m in u.milestones],
        areas=[{"name": a, "rows": [{"ok": i.ok, "label": i.label, "required": required_words(i.kind, i.required),
                                      "value": value_words(i.value), "item": i.item} for i in items]} for a, items in d.areas],
        checked=d.checked, missing=[i.label for i in d.missing],
        children_summary="、".join(f"{state_name('township', k)} {v}" for k, v in sorted(u.children.items())),
        children=[{"code": c.code, "name": c.name, "state": state_name("township", c.state),
                   "cohorts": "、".join(COHORT_NAMES[x] for x in c.cohorts), "overdue": "、".join(c.overdue or [])}
                  for c in d.children],
        evidence=[{"seq": e.seq, "at": e.at, "action": e.action, "name": e.name, "path": e.path, "sha256": e.sha256,
                   "size": e.size, "stored": e.stored, "words": e.words} for e in d.evidence],
        store=d.store,
        history=[{"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "action_name": e.action_name,
                  "change": _change(e), "note": e.note, "detail": e.detail, "evidence": e.evidence} for e in d.history],
        now=f"{d.now.astimezone(SHANGHAI):%Y-%m-%d %H:%M}", drill=_drill_banner(d.drill),
    )
