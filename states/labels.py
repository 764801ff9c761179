"""The one home of the words officials read for the engine's identifiers: cohorts, states, triggers,
milestone statuses and levels. Everything that shows a label imports it from here."""

from __future__ import annotations

# The cohorts the engine knows, in the order tables show them.
COHORTS = ("provincial_demo", "county_demo", "key", "heavy_task")
# The cohorts that count townships toward a milestone (heavy_task only raises checklist thresholds).
MILESTONE_COHORTS = ("provincial_demo", "county_demo", "key")

COHORT_NAMES = {"provincial_demo": "省定示范乡镇", "county_demo": "县区示范重点乡镇", "key": "安全生产重点乡镇",
                "heavy_task": "安全监管任务较重的乡镇"}
COHORT_SHORT = {"provincial_demo": "省示范", "county_demo": "县示范", "key": "重点", "heavy_task": "任务重"}

LEVEL_NAMES = {"province": "省", "city": "市", "county": "县区", "township": "乡镇"}

# A milestone's status as `show`, the dossier and the tables print it.
MILESTONE_STATUS = {"met": "已完成", "pending": "未到期", "overdue": "已逾期"}

# Column-width labels for the built-in campaign's milestones (ids of the contract); another campaign's
# milestones show their names, cut short.
MILESTONE_SHORT = {"plan_submission": "方案报送", "provincial_demo": "省定示范", "county_demo": "县区示范",
                   "demo_review": "示范验收", "key_compliance": "重点达标", "full_coverage": "全面达标"}

STATE_NAMES = {
    ("township", "not_started"): "未开展",
    ("township", "building"): "创建中",
    ("township", "applied"): "已申请验收",
    ("township", "rectifying"): "整改中",
    ("township", "accepted"): "已达标",
    ("county", "mobilization"): "准备发动",
    ("county", "demonstration"): "示范创建",
    ("county", "key_compliance"): "重点达标",
    ("county", "full_coverage"): "全面实现",
    ("county", "standardized"): "全面达标",
    ("city", "mobilization"): "准备发动阶段",
    ("city", "demonstration"): "示范乡镇创建阶段",
    ("city", "key_compliance"): "重点乡镇达标阶段",
    ("city", "full_coverage"): "全面实现阶段",
    ("city", "closed"): "已结束",
}

TRIGGER_NAMES = {
    "start": "开展创建",
    "apply": "申请验收",
    "accept": "验收通过",
    "reject": "验收不通过",
    "resubmit": "整改后重新申请",
    "revoke": "复查不合格撤销",
    "submit_plan": "报送推进方案",
    "approve_demonstration": "示范创建验收通过",
    "certify_key_compliance": "确认重点乡镇达标",
    "certify_full_coverage": "确认全面达标",
    "begin_demonstration": "进入示范乡镇创建阶段",
    "begin_key_compliance": "进入重点乡镇达标阶段",
    "begin_full_coverage": "进入全面实现阶段",
    "close": "结束",
}


def state_name(level: str, state: str | None) -> str:
    """The Chinese name of a state, or the identifier where none is declared."""
    if state is None:
        return "—"
    return STATE_NAMES.get((level, state), state)


def required_words(kind: str, required: object) -> str:
    """What a checklist item requires, as `show` and the dossier print it."""
    if kind == "flag":
        return "必备" if required else "可选"
    if kind == "count":
        return f"≥ {required}"
    return "须填写"


def value_words(value: object) -> str:
    """A checklist item's recorded value, as `show` and the dossier print it."""
    if value is None:
        return "未填报"
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)
