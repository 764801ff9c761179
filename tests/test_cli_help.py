"""Every command and subcommand of `anjian`, found by walking the click tree (not from a list), answers
`--help` with exit 0 and shows an example."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from anjian.workflow.cli import cli


def walk(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every command below `group`, depth first: ('init',), ('audit', 'verify'), …"""
    ctx = click.Context(group, info_name=" ".join(("anjian", *path)))
    found: list[tuple[str, ...]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"`anjian {' '.join((*path, name))}` is listed but cannot be loaded"
        found.append((*path, name))
        if isinstance(command, click.Group):
            found += walk(command, (*path, name))
    return found


PATHS = walk(cli)


def test_the_walk_reaches_subcommands():
    """The tree is walked below the top level (`audit verify`, `contact add`, `user add`, …)."""
    assert ("audit", "verify") in PATHS
    assert ("contact", "add") in PATHS
    assert len(PATHS) > len(cli.list_commands(click.Context(cli)))


@pytest.mark.parametrize("path", [(), *PATHS], ids=lambda p: " ".join(("anjian", *p)))
def test_help_exits_0_and_shows_an_example(path):
    """`anjian … --help` exits 0 and shows an example: 示例 in Chinese (the default), Example in English."""
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "用法：" in result.output and "示例：" in result.output, f"`anjian {' '.join(path)} --help`: {result.output}"
    english = CliRunner().invoke(cli, [*path, "--help"], env={"ANJIAN_LANG": "en"})
    assert english.exit_code == 0, english.output
    assert "Usage:" in english.output and "Example" in english.output, english.output


def example_lines(output: str) -> list[str]:
    """The lines of the example block(s) of a help page, as shown."""
    return [ln.strip() for ln in output.splitlines() if ln.strip().startswith("anjian ")]


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("path", [("designate",), ("record",), ("advance",), ("assessment",), ("report", "progress"),
                                  ("units",), ("status",), ("diagram",), ("init",)], ids=" ".join)
def test_examples_stay_one_command_a_line(path, lang):
    """Issue 13 point 8: each example command of a help page is shown whole on its own line, as the docstring
    writes it (never run together, never a file name broken across lines), in Chinese and English alike."""
    from anjian.workflow.cli.helptext import help_of

    command = cli
    for name in path:
        command = command.get_command(click.Context(command), name)
    written = [ln.strip() for ln in help_of(command).splitlines() if ln.strip().startswith("anjian ")]
    assert written, f"`anjian {' '.join(path)}` has no example command in its docstring"
    result = CliRunner().invoke(cli, [*path, "--help"], env={"ANJIAN_LANG": lang, "COLUMNS": "60"})
    assert result.exit_code == 0, result.output
    assert example_lines(result.output) == written


def test_the_formatter_never_breaks_a_file_name():
    """Wrapping prose breaks between words or Chinese characters, never inside a file name, option or path."""
    from anjian.workflow.cli.helptext import fill

    text = ("批量：把 key-townships.csv 和 车辆登记证明材料.pdf 放在 /var/lib/anjian/outbox/ 下，再用 --errors FILE "
            "写出每个有问题的行，终端只显示前 50 条。")
    for width in range(12, 60):
        lines = fill(text, width)
        words = " ".join(lines).split()
        for whole in ("key-townships.csv", "车辆登记证明材料.pdf", "/var/lib/anjian/outbox/", "--errors"):
            assert any(whole in ln for ln in lines), (width, lines)
        assert all(w for w in words)


def test_group_listing_is_chinese_whole_sentences():
    """`anjian user --help` lists each subcommand by the first sentence of its Chinese help, not click's cut English."""
    result = CliRunner().invoke(cli, ["user", "--help"])
    listing = result.output.split("命令:")[1]
    assert "停用人员：此后不能再操作（其历史记录保留）。" in listing
    assert "Disable" not in listing and "..." not in listing
    english = CliRunner().invoke(cli, ["user", "--help"], env={"ANJIAN_LANG": "en"}).output
    assert "Disable an official: they can no longer act (their history stays)." in " ".join(english.split())


@pytest.mark.parametrize(("args", "zh", "en"), [
    (["show"], "错误：缺少参数 'UNIT'。", "Error: Missing argument 'UNIT'."),
    (["status", "--bogus"], "错误：没有选项 '--bogus'。", "Error: No such option '--bogus'."),
    (["units", "--format", "xx"], "错误：'--format' 的值无效：'xx' 不在可选值之中：", "Error: Invalid value for '--format'"),
    (["bogus"], "错误：没有命令 'bogus'。", "Error: No such command 'bogus'."),
    (["units", "--overdue", "3"], "错误：多余的参数（3）", "Error: Got unexpected extra argument (3)"),
])
def test_click_usage_errors_are_in_the_officials_language(args, zh, en):
    """click's own usage errors are Chinese by default (usage line, hint and message) and English on request,
    with click's exit code 2."""
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert zh in result.output and "用法：" in result.output and "查看帮助" in result.output, result.output
    assert "Error:" not in result.output and "Try '" not in result.output
    english = CliRunner().invoke(cli, args, env={"ANJIAN_LANG": "en"})
    assert english.exit_code == 2 and en in english.output and "Try '" in english.output, english.output


@pytest.mark.parametrize(("env", "word"), [
    ({"LANG": "en_US.UTF-8"}, "Usage:"), ({"LANG": "C.UTF-8"}, "用法："), ({"LANG": "zh_CN.UTF-8"}, "用法："),
    ({"LC_ALL": "en_GB.UTF-8", "LANG": "zh_CN.UTF-8"}, "Usage:"), ({}, "用法："),
])
def test_the_locale_chooses_the_language_without_anjian_lang(env, word):
    """Without ANJIAN_LANG an English locale gives English help, C.UTF-8 or a Chinese locale Chinese (a real process)."""
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if k not in ("ANJIAN_LANG", "LANG", "LC_ALL", "LC_MESSAGES")}
    out = subprocess.run([sys.executable, "-c", "from anjian.workflow.cli import main; main()", "status", "--help"], env={**base, **env},
                         capture_output=True, text=True, encoding="utf-8", check=True).stdout
    assert out.startswith(word), out


def test_an_abort_is_said_in_the_officials_language():
    """click's Abort (here raised by a command) exits 1 saying 已中止 by default and Aborted! in English."""
    from anjian.workflow.cli.helptext import localized_errors

    def aborts():
        raise click.Abort()

    @click.command()
    def cmd():
        localized_errors(aborts)

    assert "已中止。" in CliRunner().invoke(cmd, []).output
    english = CliRunner().invoke(cmd, [], env={"ANJIAN_LANG": "en"})
    assert english.exit_code == 1 and "Aborted!" in english.output
