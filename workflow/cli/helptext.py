"""`--help` in the official's language: command docstrings and option help are English message ids,
translated by the catalog when help is shown (never at import, so one process can answer in both).

The root group gives every subcommand `I18nContext`, whose formatter translates what click writes: the
usage line, section headings, the help text, and each option's help (click's own extras such as
``[default: table]`` included). The formatter wraps Chinese as well as English (by display width, between
characters, never inside a file name, option or path) and keeps an indented block such as an `Example:`'s
command lines exactly as written, one per line. A group lists its subcommands by the first sentence of
their translated help. `all_help_texts` lists every text so the catalog test can require a translation.

click's own error messages ("No such option …", "Missing argument …") come from click's stdlib gettext,
which knows nothing of our language: `localized_errors` catches each `click.ClickException` at the root
group and shows it again in our language, matching its text against click's message templates (below,
in our catalog) — public API only, nothing of click patched.
"""

from __future__ import annotations

import inspect
import re
import sys
import unicodedata
from types import MethodType

import click

from anjian.i18n import N_, _

_EXTRAS = re.compile(r"^(.*?)(\s{2}\[[^\]]*\])?$", re.S)
_EXTRA_WORDS = ("default: ", "env var: ")

# click's own words in a help page, so the catalog carries them.
CLICK_HELP_WORDS = (N_("Usage: "), N_("Options"), N_("Commands"), N_("Positional arguments"),
                    N_("Show this message and exit."), N_("Show the version and exit."), N_("default: "),
                    N_("env var: "), N_("must be given"), N_("Example:"), N_("Examples:"))


def _extras(text: str) -> str:
    inner = text.strip()[1:-1]
    parts = []
    for part in inner.split("; "):
        if part == "required":
            part = _("must be given")
        for word in _EXTRA_WORDS:
            if part.startswith(word):
                part = _(word) + part[len(word):]
                break
        parts.append(part)
    return "  [" + "; ".join(parts) + "]"


def translate_help(text: str) -> str:
    """An option's help with click's bracketed extras, translated part by part."""
    if not text:
        return text
    m = _EXTRAS.match(text)
    body, extras = (m.group(1), m.group(2)) if m else (text, None)
    out = _(body) if body else body
    return out + (_extras(extras) if extras else "")


# --- wrapping Chinese and English alike -------------------------------------------------------------

_CLOSING = "，。；：、）」』”’！？》〉…"
_OPENING = "（「『“‘《〈"
# One unbreakable piece of a run of text without spaces: a file name (车辆登记证.pdf, key-townships.csv),
# a run of ASCII (an option, a path, a word), or one character with the punctuation that must stay with it.
_ATOM = re.compile(
    rf"[{_OPENING}]*(?:[\w\-/.]*\w\.[A-Za-z0-9]{{1,5}}(?![\w])|[!-~]+|.)[{_CLOSING}]*", re.S)
_CJK_EDGE = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")


def display_width(text: str) -> int:
    """Columns `text` takes in a terminal: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _atoms(text: str):
    """(atom, space before it) for each piece a line may be broken before."""
    for i, chunk in enumerate(text.split()):
        for j, atom in enumerate(_ATOM.findall(chunk)):
            yield atom, (i > 0 and j == 0)


def wrap(text: str, width: int, indent: str = "") -> list[str]:
    """`text` (one paragraph) filled to `width` columns, each line starting with `indent`."""
    lines: list[str] = []
    line, used = "", 0
    room = max(width - display_width(indent), 10)
    for atom, spaced in _atoms(text):
        w = display_width(atom)
        gap = 1 if spaced and line else 0
        if line and used + gap + w > room:
            lines.append(indent + line)
            line, used, gap = "", 0, 0
        line += " " * gap + atom
        used += gap + w
    if line:
        lines.append(indent + line)
    return lines


def _join_lines(lines: list[str]) -> str:
    """One paragraph's lines as one text: a space between words, none between Chinese characters."""
    out = ""
    for line in (ln.strip() for ln in lines):
        if out and not (_CJK_EDGE.match(out[-1]) and _CJK_EDGE.match(line[:1] or " ")):
            out += " "
        out += line
    return out


def _verbatim(paragraph: str) -> bool:
    """An example block (`\\b` first, or every line indented): shown line by line as written."""
    lines = [ln for ln in paragraph.splitlines() if ln.strip()]
    return paragraph.startswith("\b") or bool(lines) and all(ln[:1] in (" ", "\t") for ln in lines)


def fill(text: str, width: int, indent: str = "") -> list[str]:
    """Help text as lines: paragraphs filled, example blocks kept verbatim, one blank line between."""
    out: list[str] = []
    for paragraph in re.split(r"\n[ \t]*\n", text.strip("\n")):
        if not paragraph.strip():
            continue
        if out:
            out.append("")
        if _verbatim(paragraph):
            out += [indent + ln.rstrip() for ln in paragraph.lstrip("\b").strip("\n").splitlines()]
        else:
            out += wrap(_join_lines(paragraph.splitlines()), width, indent)
    return out


class I18nFormatter(click.HelpFormatter):
    """click's formatter, translating each piece as it is written and wrapping it by display width."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, _("Usage: ") if prefix is None else _(prefix))

    def write_heading(self, heading: str) -> None:
        super().write_heading(_(heading))

    def write_text(self, text: str) -> None:
        for line in fill(_(text), self.width, " " * self.current_indent):
            self.write(f"{line}\n")

    def write_dl(self, rows, col_max: int = 30, col_spacing: int = 2) -> None:
        rows = [(first, translate_help(second)) for first, second in rows]
        if not rows:
            return
        first_col = min(max(display_width(first) for first, _s in rows), col_max) + col_spacing
        for first, second in rows:
            self.write(f"{'':>{self.current_indent}}{first}")
            if not second:
                self.write("\n")
                continue
            if display_width(first) <= first_col - col_spacing:
                self.write(" " * (first_col - display_width(first)))
            else:
                self.write("\n" + " " * (first_col + self.current_indent))
            lines = fill(second, max(self.width - first_col - 2 - self.current_indent, 10))
            self.write((lines[0] if lines else "") + "\n")
            for line in lines[1:]:
                self.write(f"{'':>{first_col + self.current_indent}}{line}\n" if line else "\n")


class I18nContext(click.Context):
    formatter_class = I18nFormatter


def short_help(cmd: click.Command, limit: int = 45) -> str:
    """A subcommand's line in its group's listing: the first sentence of its help, translated whole
    (never click's cut of the English, which a translation cannot match)."""
    text = _(cmd.short_help) if cmd.short_help else _(help_of(cmd))
    first = _join_lines(re.split(r"\n[ \t]*\n", text.strip())[0].splitlines())
    m = re.match(r"(.+?(?:。|[.!?](?=\s|$)))", first)
    return m.group(1) if m else first


def localize(cmd: click.Command) -> click.Command:
    """Give `cmd` (and, for a group, each of its subcommands, loaded lazily or not) the translating context
    and listing."""
    if getattr(cmd, "_anjian_localized", False):
        return cmd
    cmd._anjian_localized = True
    cmd.context_class = I18nContext
    cmd.get_short_help_str = MethodType(short_help, cmd)
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            localize(sub)
        load = cmd.get_command  # a lazy group (report) loads its subcommands here: localize each as it comes

        def get_command(ctx: click.Context, name: str) -> click.Command | None:
            sub = load(ctx, name)
            return localize(sub) if sub is not None else None

        cmd.get_command = get_command
    return cmd


def help_of(cmd: click.Command) -> str:
    """The text click shows for `cmd`'s docstring (its message id)."""
    return inspect.cleandoc(cmd.help or "").partition("\f")[0]


def _walk(cmd: click.Command, path: str):
    yield path, cmd
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):
            yield from _walk(cmd.get_command(ctx, name), f"{path} {name}")


def all_help_texts(cli: click.Group, summaries: dict[str, str]) -> list[tuple[str, str]]:
    """(message id, command) for every docstring, short summary and option help of the command line
    `cli` (whose listing shows `summaries`)."""
    ctx = click.Context(cli)
    out: list[tuple[str, str]] = [(help_of(cli), "anjian")]
    out += [(text, f"anjian {name} (summary)") for name, text in summaries.items()]
    for name in cli.list_commands(ctx):
        for path, cmd in _walk(cli.get_command(ctx, name), f"anjian {name}"):
            if cmd.help:
                out.append((help_of(cmd), path))
            if cmd.short_help:
                out.append((cmd.short_help, path))
            if isinstance(cmd, click.Group) and type(cmd).__module__ != "click.core":
                # a lazy group lists its subcommands from a static SUMMARIES table (as the root does)
                table = getattr(sys.modules.get(type(cmd).__module__), "SUMMARIES", {})
                out += [(text, f"{path} {sub} (summary)") for sub, text in table.items()]
            for param in cmd.params:
                text = getattr(param, "help", None)
                if text:
                    out.append((text, f"{path} {param.opts[0]}"))
    for param in cli.params:
        if getattr(param, "help", None):
            out.append((param.help, f"anjian {param.opts[0]}"))
    return [(t, w) for t, w in out if t]


# --- click's own messages ----------------------------------------------------------------------------

# click's message templates as click words them (its stdlib gettext ids; the names in braces are ours).
# A message matches a template whole; `{x!r}` stands for a quoted value; `message`, `kind` and
# `number_type` are themselves translated.
CLICK_MESSAGES = (
    N_("No such option {name!r}."), N_("No such command {name!r}."),
    N_("Did you mean {possibility}?"), N_("(Did you mean one of: {possibilities}?)"),
    N_("Missing argument {param_hint}."), N_("Missing option {param_hint}."),
    N_("Missing parameter {param_hint}."), N_("Missing argument."), N_("Missing command."),
    N_("Invalid value for {param_hint}: {message}"), N_("Invalid value: {message}"),
    N_("{value!r} is not one of {choices}."), N_("{value!r} is not a valid {number_type}."),
    N_("{value!r} is not a valid boolean. Recognized values: {states}"), N_("{value!r} is not {choice}."), N_("{value} is not in the range {range}."),
    N_("{value!r} does not match the format {format}."), N_("{value!r} does not match the formats {formats}."),
    N_("{kind} {filename!r} does not exist."), N_("{kind} {filename!r} is a file."),
    N_("{kind} {filename!r} is a directory."), N_("{kind} {filename!r} is not readable."),
    N_("{kind} {filename!r} is not writable."),
    N_("Option {name!r} requires an argument."), N_("Option {name!r} requires {nargs} arguments."),
    N_("Option {name!r} does not take a value."), N_("Argument {name!r} takes {nargs} values."),
    N_("Got unexpected extra argument ({args})"), N_("Got unexpected extra arguments ({args})"),
    N_("Could not open file {filename!r}: {message}"), N_("Choose from:\n\t{choices}"),
    N_("unknown error"),
)
CLICK_WORDS = (N_("integer"), N_("float"), N_("File"), N_("Directory"), N_("Path"),
               N_("Error: {message}"), N_("Try '{command} {option}' for help."), N_("Aborted!"))
_TRANSLATED_FIELDS = ("message", "kind", "number_type")
_FIELD = re.compile(r"\{(\w+)(!r)?\}")


def _pattern(template: str) -> re.Pattern:
    out, last = "", 0
    for m in _FIELD.finditer(template):
        out += re.escape(template[last:m.start()])
        out += rf"'(?P<{m.group(1)}>.*?)'" if m.group(2) else rf"(?P<{m.group(1)}>.+?)"
        last = m.end()
    return re.compile(out + re.escape(template[last:]), re.S)


_PATTERNS: list[tuple[str, re.Pattern]] = []


def click_message(message: str) -> str:
    """One of click's messages in the current language (a message no template matches stays as is)."""
    if not _PATTERNS:
        _PATTERNS.extend((t, _pattern(t)) for t in CLICK_MESSAGES)
    for template, pattern in _PATTERNS:
        m = pattern.fullmatch(message)
        if m:
            fields = {k: click_message(v) if k in _TRANSLATED_FIELDS else v for k, v in m.groupdict().items()}
            return _(template).format(**fields)
    if message in CLICK_WORDS:
        return _(message)
    # click joins some messages: "No such option '--x'. Did you mean '--y'?" - one sentence at a time
    parts = re.split(r"(?<=[.?)])[ \t]+(?=\S)", message)
    if len(parts) > 1:
        done = [click_message(p) for p in parts]
        if done != parts:
            return ("" if not _is_english() else " ").join(done)
    return message


def _is_english() -> bool:
    from anjian.i18n import is_english

    return is_english()


class LocalizedClickError(click.ClickException):
    """A click error (usage, bad value …) shown in the official's language, with click's exit code."""

    def __init__(self, original: click.ClickException):
        super().__init__(original.format_message())
        self.original = original
        self.exit_code = original.exit_code

    def show(self, file=None) -> None:
        original = self.original
        ctx = getattr(original, "ctx", None)
        if isinstance(original, click.UsageError) and ctx is not None:
            hint = ""
            if ctx.command.get_help_option(ctx) is not None:
                option = max(ctx.command.get_help_option_names(ctx), key=len)
                hint = _("Try '{command} {option}' for help.").format(command=ctx.command_path, option=option) + "\n"
            click.echo(f"{ctx.get_usage()}\n{hint}", file=file, err=file is None, color=ctx.color)
        message = click_message(original.format_message())
        click.echo(_("Error: {message}").format(message=message), file=file, err=file is None)


class LocalizedAbort(click.ClickException):
    """click's Abort (a prompt answered no, or cut short), said in the official's language; exit 1."""

    exit_code = 1

    def __init__(self):
        super().__init__("Aborted!")

    def show(self, file=None) -> None:
        click.echo(_("Aborted!"), file=file, err=file is None)


def localized_errors(call, *args, **kwargs):
    """`call(*args, **kwargs)`, its click errors shown in our language."""
    try:
        return call(*args, **kwargs)
    except (LocalizedClickError, LocalizedAbort, click.exceptions.Exit):
        raise
    except click.ClickException as exc:
        raise LocalizedClickError(exc) from None
    except click.Abort:
        raise LocalizedAbort() from None
