"""The OpenAPI 3.1 document at /api/v1/openapi.json: made from the click tree, so every command the service
runs is in it, with its parameters' types, choices and help texts; and what it documents works."""

from __future__ import annotations

import httpx
from support import clock_at

YUERYA = "宽城峪耳崖镇"


def _document(served, lang: str = "zh") -> dict:
    answer = httpx.get(served.url + "/api/v1/openapi.json", headers={"Accept-Language": lang})
    assert answer.status_code == 200
    return answer.json()


def test_every_command_is_documented(served):
    """Each command of the click tree but the local ones has a path (GET and POST for a read, POST only for
    a write), and the error schema."""
    from anjian.workflow.server.openapi import commands
    from anjian.workflow.server.runner import reads_only

    doc = _document(served)
    assert doc["openapi"].startswith("3.1")
    paths = doc["paths"]
    for path, _cmd in commands():
        item = paths["/api/v1/" + "/".join(path)]
        assert set(item) == ({"get", "post"} if reads_only(path) else {"post"}), path
    for name in ("status", "units", "show", "advance", "record", "contact/add", "notices", "audit/verify"):
        assert "/api/v1/" + name in paths, name
    for local in ("init", "daemon", "serve", "login"):
        assert "/api/v1/" + local not in paths
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "cookie"}
    assert doc["components"]["schemas"]["Error"]["properties"]["error"]["required"] == ["exit", "message", "details"]


def test_params_have_types_enums_and_help(served):
    """`units` documents --level as an enum, --format's choices, and the help text as description."""
    doc = _document(served, "en")
    props = doc["paths"]["/api/v1/units"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert "enum" in props["format"] and "json" in props["format"]["enum"]
    assert props["county"]["type"] == "string" and props["county"].get("description")
    advance = doc["paths"]["/api/v1/advance"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert advance["properties"]["expect_version"]["type"] == "integer"
    assert advance["properties"]["evidence"]["type"] == "array"


def test_a_sample_of_documented_params_work(served):
    """Parameters taken from the document, given as documented, are accepted by the service."""
    doc = _document(served)
    auth = {"Authorization": "Bearer " + served.token("tester")}
    with clock_at("2014-12-15T09:00"):
        for path, params in (("units", {"county": "130827", "level": "township"}), ("show", {"unit": YUERYA}),
                             ("status", {}), ("history", {"unit": YUERYA}), ("contact/list", {})):
            documented = doc["paths"]["/api/v1/" + path]["post"]["requestBody"]["content"]["application/json"]
            assert set(params) <= set(documented["schema"]["properties"]), path
            answer = httpx.post(served.url + "/api/v1/" + path, json=params, headers=auth)
            assert answer.status_code == 200, (path, answer.text)


def test_a_local_command_is_not_run_by_the_service(served):
    """`init` and `daemon` run on the server's own machine only: the API has no such command (404, exit 2)."""
    answer = httpx.post(served.url + "/api/v1/init", json={}, headers={"Authorization": "Bearer " + served.token("tester")})
    assert answer.status_code == 404 and answer.json()["error"]["exit"] == 2


def test_a_write_asked_for_with_a_get_is_refused(served):
    """A GET never changes anything: advance by GET is refused (405, exit 2) and the township stays as it was."""
    token = {"Authorization": "Bearer " + served.token("chief_yuerya")}
    r = httpx.get(served.url + "/api/v1/advance", params={"unit": "130827102", "trigger": "start"}, headers=token)
    assert r.status_code == 405 and r.json()["error"]["exit"] == 2
    assert httpx.get(served.url + "/api/v1/show", params={"unit": "130827102"}, headers=token).json()["state"] == "not_started"
