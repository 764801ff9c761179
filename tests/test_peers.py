"""Several `anjian serve` processes on one database are peers: each answers every official, a change
made through one is seen through the other at once, writes through both at the same time all land,
and the audit log stays one intact chain. Real processes on loopback ports, on PostgreSQL when
ANJIAN_TEST_PG names a server (on SQLite, the same file served twice)."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from support import add_officials, record_checklist
from support_server import serve

pytestmark = pytest.mark.slow  # two service processes start and stop

TOWNS = ["130827100", "130827101", "130827103", "130827104", "130827105", "130827106"]


def test_two_services_on_one_database_are_peers(chengde, db_url, tmp_path):
    """A township started through one service shows as started through the other; chiefs writing
    through both at once all succeed; `audit verify` is intact afterwards."""
    from anjian.workflow.services import credentials
    from anjian.workflow.services.advance import advance

    now = dt.datetime.now(dt.UTC)
    add_officials(chengde, {f"peer_chief{i}": ("township_chief", code) for i, code in enumerate(TOWNS)})
    tokens = [credentials.issue(chengde, f"peer_chief{i}", "admin", now).secret for i in range(len(TOWNS))]
    for i, code in enumerate(TOWNS[1:], start=1):
        advance(chengde, code, "start", f"peer_chief{i}", now)
        record_checklist(chengde, code, actor=f"peer_chief{i}", now=now, skip=("ledger.documents",))
    home = tmp_path / "home"
    with serve(db_url, home, "--no-scheduler") as a, serve(db_url, home, "--no-scheduler") as b:
        url_a, url_b = a.url, b.url
        auth = {"Authorization": f"Bearer {tokens[0]}"}
        r = httpx.post(url_a + "/api/v1/advance", json={"unit": TOWNS[0], "trigger": "start"}, headers=auth, timeout=60)
        assert r.status_code == 200, r.text
        seen = httpx.get(url_b + "/api/v1/show", params={"unit": TOWNS[0]}, headers=auth, timeout=60).json()
        assert seen["state"] == "building"

        def write(i: int) -> int:
            url = (url_a, url_b)[i % 2]
            body = {"unit": TOWNS[i], "value": [f"ledger.documents=经办人{i}"]}
            return httpx.post(url + "/api/v1/record", json=body, headers={"Authorization": f"Bearer {tokens[i]}"},
                              timeout=60).status_code

        with ThreadPoolExecutor(len(TOWNS)) as pool:
            assert list(pool.map(write, range(1, len(TOWNS)))) == [200] * (len(TOWNS) - 1)
    assert (a.proc.returncode, b.proc.returncode) == (0, 0)  # both stopped cleanly on SIGTERM
    from click.testing import CliRunner

    from anjian.workflow.cli import cli

    verify = CliRunner().invoke(cli, ["--db", db_url, "audit", "verify"], env={"ANJIAN_HOME": str(tmp_path / "home")})
    assert verify.exit_code == 0, verify.output
