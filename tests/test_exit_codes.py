"""Exit 1 of the contract, which no other test produces: an unexpected error (a bug) exits 1 and the
message says where the log with the traceback is. (Exits 0 and 2–6 are produced in test_cli_*.py,
test_conflict.py and test_audit.py.)"""

from __future__ import annotations

from anjian.workflow.store.db import Database


def test_an_unexpected_error_exits_1_and_says_where_the_log_is(chengde, cli, tmp_path, monkeypatch):
    """A failure no command expects (here the database refusing every read) exits 1, says 内部错误 and
    names the log, which holds the traceback."""

    def broken(self, *args, **kwargs):
        raise RuntimeError("测试用的故障")

    monkeypatch.setattr(Database, "read", broken)
    r = cli("status")
    assert r.exit_code == 1, r.output
    assert "内部错误（a bug）" in r.output and "RuntimeError" in r.output
    log = tmp_path / "home" / "anjian-error.log"
    assert str(log) in r.output
    assert "测试用的故障" in log.read_text(encoding="utf-8")
