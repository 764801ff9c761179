"""The API for programs: JSON bodies equal to `--format json`, errors with their exit code, list results in
pages (`limit`, `offset`, X-Total-Count, Link), and `show`'s ETag taken back by writes as If-Match."""

from __future__ import annotations

import json

import httpx
from support import clock_at

YUERYA = "宽城峪耳崖镇"


def _get(served, path: str, official: str = "tester", **kwargs) -> httpx.Response:
    return httpx.get(served.url + "/api/v1/" + path, headers={"Authorization": "Bearer " + served.token(official),
                                                              **kwargs.pop("headers", {})}, **kwargs)


def _post(served, path: str, body: dict, official: str = "tester", headers: dict | None = None) -> httpx.Response:
    return httpx.post(served.url + "/api/v1/" + path, json=body,
                      headers={"Authorization": "Bearer " + served.token(official), **(headers or {})})


def test_a_json_body_is_the_commands_format_json(served, cli):
    """`GET /api/v1/show?unit=…` answers what `anjian show UNIT --format json` prints."""
    with clock_at("2014-12-15T09:00"):
        answer = _get(served, "show", params={"unit": YUERYA})
    assert answer.status_code == 200
    assert answer.json() == json.loads(cli("show", YUERYA, "--format", "json").stdout)


def test_list_results_come_in_pages(served, cli):
    """`units` answers 100 by default, with the total and a link to the next page; `limit`/`offset` page on."""
    everything = json.loads(cli("units", "--format", "json").stdout)
    with clock_at("2014-12-15T09:00"):
        answer = _get(served, "units")
        page = _get(served, "units", params={"limit": 5, "offset": 10, "level": "township"})
        last = _get(served, "units", params={"limit": 1000})
    assert answer.status_code == 200
    assert answer.headers["X-Total-Count"] == str(len(everything))
    assert answer.json() == everything[:100]
    assert 'rel="next"' in answer.headers["Link"] and "offset=100" in answer.headers["Link"]
    townships = [u for u in everything if u["level"] == "township"]
    assert page.json() == townships[10:15]
    assert len(last.json()) == len(everything) and "Link" not in last.headers


def test_a_bad_page_is_refused(served):
    """A limit over 1000, of 0 or not a number is bad input: HTTP 400, exit 2."""
    for limit in ("0", "1001", "abc"):
        answer = _get(served, "units", params={"limit": limit})
        assert answer.status_code == 400 and answer.json()["error"]["exit"] == 2, limit


def test_show_has_an_etag_that_writes_take_as_if_match(served):
    """`show` answers W/"CODE-vN"; a write with a stale If-Match is refused 409 / exit 5, a fresh one done."""
    tag = _get(served, "show", params={"unit": YUERYA}).headers["ETag"]
    assert tag == 'W/"130827102-v1"'
    done = _post(served, "advance", {"unit": YUERYA, "trigger": "start"}, "chief_yuerya", {"If-Match": tag})
    assert done.status_code == 200, done.text
    stale = _post(served, "record", {"unit": YUERYA, "value": ["six.vehicle", "是"]}, "chief_yuerya",
                  {"If-Match": tag})
    assert stale.status_code == 409 and stale.json()["error"]["exit"] == 5
    fresh = _get(served, "show", params={"unit": YUERYA}).headers["ETag"]
    assert fresh != tag
    ok = _post(served, "record", {"unit": YUERYA, "value": ["six.vehicle", "是"]}, "chief_yuerya", {"If-Match": fresh})
    assert ok.status_code == 200, ok.text
    stale = _post(served, "designate", {"unit": YUERYA, "cohort": "key"}, "tester", {"If-Match": fresh})
    assert stale.status_code == 409 and stale.json()["error"]["exit"] == 5


def test_record_refuses_a_stale_expected_version_on_a_terminal_too(chengde, cli):
    """`record --expect-version N` is refused (exit 5, nothing written) once the unit moved past N."""
    r = cli("record", YUERYA, "six.vehicle", "是", "--expect-version", "7", user="chief_yuerya")
    assert r.exit_code == 5, r.output
    r = cli("record", YUERYA, "six.vehicle=是", "staff.full_time=4", "--expect-version", "7", user="chief_yuerya")
    assert r.exit_code == 5, r.output
    r = cli("record", YUERYA, "six.vehicle", "是", "--expect-version", "1", user="chief_yuerya")
    assert r.exit_code == 0, r.output


def test_an_error_has_its_exit_code_beside_the_status(served):
    """A command's refusal answers the contract's exit code in the error object."""
    answer = _post(served, "advance", {"unit": YUERYA, "trigger": "accept"}, "chief_yuerya")
    assert answer.status_code in (403, 409)
    error = answer.json()["error"]
    assert error["exit"] in (3, 4) and error["message"]


def test_a_program_gets_the_files_a_command_wrote(served):
    """`status --out` for a program: the messages and the file to download, in JSON."""
    with clock_at("2014-12-15T09:00"):
        answer = _post(served, "status", {"format": "csv", "out": "p.csv"})
        assert answer.status_code == 200, answer.text
        [made] = answer.json()["files"]
        data = _get(served, made["download"].removeprefix("/api/v1/")).content
    assert made["name"] == "p.csv" and "p.csv" in answer.json()["messages"]
    assert len(data) == made["size"] and data.startswith(b"\xef\xbb\xbf")  # CSV with its BOM, as embedded
