"""`anjian report progress|dossier|circular` and `anjian assessment`."""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from anjian.i18n import _, pgettext
from anjian.workflow.cli.common import command, emit, format_option

# report subcommand -> "module:attribute"; imported on use, so `anjian report --help` stays light
REPORTS = {
    "progress": "report_views:progress",
    "dossier": "report_views:dossier",
    "circular": "reports:circular",
}
SUMMARIES = {
    "progress": "The city's progress per county and cohort, with charts (html, md, csv, xlsx).",
    "dossier": "One unit's file for an acceptance visit: checklist, evidence, history.",
    "circular": "Draft (or --issue) the circular (通报) on one milestone: on time, late, deductions.",
}


class ReportGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(REPORTS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = REPORTS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, SUMMARIES[name]) for name in REPORTS])


@click.group(cls=ReportGroup)
def report() -> None:
    """Reports for officials, in Chinese: progress with charts, a unit's dossier, a circular.

    Example:

        anjian report progress --format html --out 进度.html
    """


@click.command()
@click.option("--milestone", "milestone", required=True, metavar="MILESTONE",
              help="The milestone the circular is about, by id or name (e.g. provincial_demo, or its name).")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md", show_default=True,
              help="Output format.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", help="Write to FILE.")
@click.option("--issue", is_flag=True, help="Record in the audit log that this circular was issued (city office).")
@command
def circular(env, milestone: str, fmt: str, out: Path | None, issue: bool) -> None:
    """Draft the circular (通报) on one milestone as of now: units on time, late (with days), not done,
    and each county's deductions under the campaign's [assessment] rules. With --issue the issuing is
    recorded (an audit row with the text's SHA-256).

    Example:

        anjian report circular --milestone provincial_demo --now 2015-04-01
    """
    from anjian.workflow.formats import output as render
    from anjian.workflow.reports import assessment

    db = env.database()
    issued_at = env.write_now if issue else None  # issuing is a write: at the real clock (a drill's --now)
    draft = assessment.circular(db, env.now, milestone, fmt="html" if fmt == "html" else "md")
    if issue:
        draft = assessment.issue(db, draft, env.actor, issued_at)
    text = render.as_json(draft.as_json()) if fmt == "json" else draft.text
    if out is not None:
        _write(out, text)
    else:
        click.echo(text, nl=not text.endswith("\n"))
    if issue:
        click.echo(_("Issued and recorded: audit row #{seq}, SHA-256 {sha}…").format(
            seq=draft.issued_seq, sha=draft.sha256[:16]), err=True)


def _write(out: Path, text: str) -> None:
    from anjian.workflow.errors import BadInput

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BadInput(_("cannot write {path}: {reason}").format(path=out, reason=exc.strerror)) from None
    click.echo(_("Written to {path}").format(path=out), err=True)


@click.command(name="assessment")
@click.option("--county", metavar="UNIT", help="Only this county, with every deduction listed.")
@format_option(("table", "json"))
@command
def assessment_cmd(env, county: str | None, fmt: str) -> None:
    """Each county's running assessment score: the base less every deduction, each tied to its
    milestone, the unit, the days late and the audit row behind it.

    Example:

        anjian assessment --now 2015-08-01
        anjian assessment --county 宽城
    """
    from anjian.workflow.formats import output as render
    from anjian.workflow.reports import assessment

    res = assessment.assess(env.database(), env.now, county)
    words = {"late": _("met late"), "missed": _("not met")}

    def text() -> str:
        from anjian.workflow.cli.views import milestone_word

        head = _("Assessment scores ({campaign}, as of {today}, base {base})").format(
            campaign=res.campaign, today=res.today, base=f"{res.base:g}")
        table = render.table([pgettext("column", "Code"), pgettext("column", "County"), pgettext("column", "Score"),
                              pgettext("column", "Deducted"), pgettext("column", "Deductions")], [
            [c.code, c.name, f"{c.score:g}", f"{c.deducted:g}" if c.deducted else None, len(c.items) or None]
            for c in sorted(res.counties, key=lambda c: (c.score, c.code))], drop=(0, 4))
        out = [render.fit_lines(head), "", table]
        if county or len(res.counties) == 1:
            for c in res.counties:
                detail = render.table([pgettext("column", "Milestone"), pgettext("column", "Deadline"),
                                       pgettext("column", "Unit"), pgettext("column", "Case"), pgettext("column", "Days"),
                                       pgettext("column", "Deducted"), pgettext("column", "Audit row")], [
                    [milestone_word(d.milestone), d.deadline, d.unit_name, words[d.kind], d.days, f"{d.points:g}",
                     f"#{d.audit_seq}" if d.audit_seq else None] for d in c.items], drop=(6, 1)) if c.items else _("no deductions")
                out += ["", _("{county}: deductions").format(county=c.name), detail]
        return "\n".join(out)

    emit(fmt, text, res.as_json())


assessment = assessment_cmd
