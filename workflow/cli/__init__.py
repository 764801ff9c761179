"""The `anjian` command line: a thin shell over the services.

Subcommands are imported only when run, so `anjian --help` never loads SQLAlchemy or transitions.
"""

from __future__ import annotations

import importlib

import click

from anjian.workflow.cli.common import global_options

# command name -> "module:attribute", in the order `--help` lists them
COMMANDS = {
    "init": "setup:init",
    "campaign": "campaigns:campaign",
    "status": "views:status",
    "units": "views:units",
    "show": "views:show",
    "designate": "changes:designate",
    "record": "changes:record",
    "advance": "changes:advance",
    "history": "auditing:history",
    "audit": "auditing:audit",
    "contact": "notify:contact",
    "remind": "notify:remind",
    "notices": "notify:notices",
    "deadlines": "notify:deadlines",
    "calendar": "notify:calendar",
    "daemon": "notify:daemon",
    "user": "people:user",
    "login": "signin:login",
    "logout": "signin:logout",
    "token": "signin:token",
    "report": "reports:report",
    "assessment": "reports:assessment",
    "diagram": "diagram:diagram",
    "serve": "anjian.workflow.server.command:serve",
}


class LazyGroup(click.Group):
    """A group whose subcommands live in modules imported on first use."""

    def make_context(self, info_name, args, parent=None, **extra):
        from anjian.workflow.cli.helptext import I18nContext, localized_errors

        self.context_class = I18nContext
        return localized_errors(super().make_context, info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context):
        from anjian.workflow.cli.helptext import localized_errors

        return localized_errors(super().invoke, ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name.replace("_", "-")) or COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        from anjian.workflow.cli.helptext import localize

        # "anjian.…" names a module above the CLI (the service's `serve`), imported only when run
        name = module if module.startswith("anjian.") else f"{__name__}.{module}"
        return localize(getattr(importlib.import_module(name), attr))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help comes from a static table so that listing commands imports nothing.
        from anjian.i18n import _

        with formatter.section(_("Commands")):
            formatter.write_dl([(name, _(SUMMARIES.get(name, ""))) for name in COMMANDS])


SUMMARIES = {
    "init": "Create or upgrade the database; load the registry and campaign.",
    "campaign": "The campaigns this database runs side by side: add, list.",
    "status": "The city at a glance: each county's stage, progress and deadlines.",
    "units": "List units, filtered by level, county, cohort, state or overdue.",
    "show": "One unit in full: checklist, milestones, and what each trigger needs.",
    "designate": "Put a township into a cohort (or take it out), one or from a CSV/XLSX file.",
    "record": "Record a unit's checklist: items in one go, from a CSV/XLSX file, or a sheet to fill in.",
    "advance": "Fire a trigger for a unit (one, or a CSV/XLSX batch).",
    "history": "The audit trail, filtered by unit, time and actor.",
    "audit": "Verify the audit log (chain, checkpoint, states); write signed checkpoints.",
    "contact": "Who receives a unit's notices (add, list, remove, import).",
    "remind": "One reminder pass at `now` (reminders, overdue notices and early warnings).",
    "notices": "What was sent, to whom, when, by which channel, with status.",
    "deadlines": "Deadlines and the working days they are reminded on; --ics exports them.",
    "calendar": "Load the official working-day schedule of a year.",
    "daemon": "Run the scheduler: reminders each working day at 08:30.",
    "user": "Officials: add, edit, list, disable (admins only).",
    "login": "Sign in to an anjian service; the CLI then runs every command on it.",
    "logout": "Sign out of the service: revoke the token and forget it.",
    "token": "API tokens of the service: create, list, revoke.",
    "report": "Reports: progress with charts, a township's dossier, a circular (通报).",
    "assessment": "Each county's running score: deductions tied to milestones and audit rows.",
    "diagram": "The state machines as diagrams (mermaid, dot, svg), guards on the edges.",
    "serve": "Run the service: the API, sign-in and the reminder scheduler (--check checks the setup).",
}


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@global_options
@click.version_option(package_name="anjian", prog_name="anjian")
def cli() -> None:
    """anjian（安监）— 乡镇安全监管规范化建设 workflow engine.

    Every county and township moves through the campaign's stages as a guarded state machine;
    officials advance them here and see exactly what is missing when a guard refuses.

    Example:

        anjian init && anjian status
    """


def main() -> None:
    cli(prog_name="anjian")
