"""`anjian report progress` and `anjian report dossier` (attached to the `report` group in reports.py)."""

from __future__ import annotations

from pathlib import Path

import click

from anjian.i18n import _
from anjian.workflow.cli.common import command, fail

SUFFIXES = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".csv": "csv", ".xlsx": "xlsx",
            ".json": "json"}
BINARY = ("html", "xlsx")  # a page or a workbook is a file to open, not text for the terminal


def _format(fmt: str | None, out: Path | None, choices: tuple[str, ...]) -> str:
    """The format asked for, else the one --out's suffix names, else Markdown."""
    if fmt:
        return fmt
    guess = SUFFIXES.get(out.suffix.lower()) if out is not None else None
    return guess if guess in choices else "md"


def _deliver(content: str | bytes, out: Path | None, fmt: str) -> None:
    """Write the report to --out (CSV with the BOM Excel needs for Chinese), or print it."""
    if out is None:
        click.echo(content, nl=not str(content).endswith("\n"))
        return
    if isinstance(content, str):
        content = content.encode("utf-8-sig" if fmt == "csv" else "utf-8")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(content)
    except OSError as exc:
        fail(_("--out {path}: cannot write the file: {reason}").format(path=out, reason=exc.strerror or exc))
    click.echo(_("Written to {path} ({size} bytes)").format(path=out, size=f"{len(content):,}"), err=True)


@click.command()
@click.option("--county", metavar="UNIT", help="Only this county (or the counties of this city).")
@click.option("--format", "fmt", type=click.Choice(["html", "md", "csv", "xlsx", "json"]),
              help="html: one self-contained page with charts; md; csv: one row per county; xlsx: a workbook; "
                   "json: the data, for programs. [default: from --out's suffix, else md]")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write to FILE (needed for html and xlsx).")
@click.option("--chart", "chart_names", multiple=True, type=click.Choice(["counties", "trend", "stages"]),
              help="With --format json: also draw this chart, as an SVG document under \"charts\" (repeat for more).")
@command
def progress(env, county: str | None, fmt: str | None, out: Path | None, chart_names: tuple[str, ...]) -> None:
    """The progress report: per county its townships accepted/total (with progress bars) and per
    cohort, the campaign's stages and their milestones against today, each county's milestones met on
    time, late or overdue (in days), the overdue units in red, the early warning (each county's
    coming milestones with the chance of meeting them at its present pace, the warned first), and the
    counties' trend rebuilt from the audit log as of --now. The HTML page opens offline: charts are
    inline SVG, no script, no link.

    Example:

        anjian report progress --format html --out 进度.html
        anjian report progress --now 2015-04-10 --county 宽城 --format md
        anjian report progress --format xlsx --out 进度.xlsx
    """
    from anjian.workflow.reports import progress as rp

    fmt = _format(fmt, out, ("html", "md", "csv", "xlsx", "json"))
    if fmt in BINARY and out is None:
        fail(_("--format {fmt} makes a file to open, not text for the terminal: name it with --out FILE "
               "(e.g. --out 进度.{fmt})").format(fmt=fmt))
    if chart_names and fmt != "json":
        fail(_("--chart draws a chart into the JSON: give it with --format json (html has every chart already)"))
    rep = rp.build(env.database(), env.now, county, warning=env.settings.forecast)
    if fmt == "json":
        from anjian.workflow.formats.output import as_json

        _deliver(as_json(rp.as_json(rep, chart_names)), out, fmt)
        return
    render = {"html": rp.html, "md": rp.markdown, "csv": rp.csv_text, "xlsx": rp.workbook}[fmt]
    _deliver(render(rep), out, fmt)


@click.command()
@click.argument("unit")
@click.option("--format", "fmt", type=click.Choice(["html", "md"]),
              help="html: a printable page; md. [default: from --out's suffix, else md]")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", help="Write to FILE.")
@command
def dossier(env, unit: str, fmt: str | None, out: Path | None) -> None:
    """A unit's dossier for an acceptance visit: identity and path, state and cohorts, the checklist
    with each value ok or missing, every evidence file with its SHA-256 and whether the stored copy
    still matches, the full history from the audit log, and a block to sign. For a county: its own
    checklist and a summary of its townships.

    Example:

        anjian report dossier 宽城峪耳崖镇 --format html --out 峪耳崖镇验收材料.html
        anjian report dossier 宽城县
    """
    from anjian.workflow.cli.views import viewer_of
    from anjian.workflow.engine.authz import refusals_audited
    from anjian.workflow.reports import dossier as ds

    fmt = _format(fmt, out, ("html", "md"))
    viewer = viewer_of(env)
    with refusals_audited(env.database(), viewer or env.actor_name, env.stamp, "report dossier"):
        d = ds.build(env.database(), unit, env.now, env.settings.evidence_dir, viewer=viewer)
    _deliver(ds.html(d) if fmt == "html" else ds.markdown(d), out, fmt)
