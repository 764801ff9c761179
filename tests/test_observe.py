"""The service's middleware and operations routes, on the in-process server: request ids, security
headers, the body limit, metrics and who may read them, health, and the JSON log line."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import httpx

from anjian.workflow.server import observe, ops


def test_a_sane_request_id_is_echoed_and_an_odd_one_replaced(served):
    """A caller's X-Request-ID of letters, digits and dashes comes back as sent; one with other characters or too long is replaced by a fresh hex id."""
    assert httpx.get(served.url + "/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    for odd in ("abc 123", "x" * 65, "<script>", "a/b"):
        got = httpx.get(served.url + "/healthz", headers={"X-Request-ID": odd}).headers["x-request-id"]
        assert got != odd and len(got) == 32 and int(got, 16) >= 0


def test_every_answer_carries_the_security_headers(served):
    """A health answer, a refusal for no credential and an unknown page all carry nosniff, DENY, no-referrer and the CSP (no HSTS over plain HTTP)."""
    for path in ("/healthz", "/api/v1/status", "/nowhere"):
        h = httpx.get(served.url + path).headers
        assert h["x-content-type-options"] == "nosniff"
        assert h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "no-referrer"
        assert h["content-security-policy"] == "default-src 'self'; frame-ancestors 'none'"
        assert "strict-transport-security" not in h


def test_a_body_over_the_limit_is_refused_413_before_it_is_read(served):
    """A POST over max_body_bytes is refused 413 with a Chinese message, whether it says its length or is streamed in chunks; nothing is written."""
    token = served.token("tester")
    big = b"{" + b" " * (served.state.config.max_body_bytes + 10) + b"}"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    r = httpx.post(served.url + "/api/v1/advance", content=big, headers=headers)
    assert r.status_code == 413 and r.json()["error"]["exit"] == 2
    assert any("\u4e00" <= c <= "\u9fff" for c in r.json()["error"]["message"])  # said in Chinese

    def chunks():
        for _ in range(20):
            yield b" " * (served.state.config.max_body_bytes // 10)

    r = httpx.post(served.url + "/api/v1/advance", content=chunks(), headers=headers)
    assert r.status_code == 413
    assert r.headers["x-request-id"]


def test_metrics_count_requests_and_commands(served):
    """/metrics counts each request by method, route and status, a command by its name and exit code, and never labels a unit code."""
    token = served.token("tester")
    httpx.get(served.url + "/api/v1/show", params={"unit": "130827102"}, headers={"Authorization": f"Bearer {token}"})
    httpx.get(served.url + "/api/v1/show", params={"unit": "no-such"}, headers={"Authorization": f"Bearer {token}"})
    text = httpx.get(served.url + "/metrics").text
    assert 'anjian_requests_total{method="GET",route="/api/v1/show",status="200"} 1.0' in text
    assert 'anjian_commands_total{command="show",exit="0"} 1.0' in text
    assert 'anjian_commands_total{command="show",exit="2"} 1.0' in text
    assert "130827102" not in text and "no-such" not in text
    assert "anjian_request_seconds_bucket" in text


def test_metrics_are_refused_to_an_address_not_allowed(served):
    """Only loopback and the metrics_from networks may read /metrics; from elsewhere the answer is 403."""
    import ipaddress

    assert ops.metrics_allowed("127.0.0.1", [])
    assert ops.metrics_allowed("::1", [])
    assert not ops.metrics_allowed("10.1.2.3", [])
    assert ops.metrics_allowed("10.1.2.3", [ipaddress.ip_network("10.0.0.0/8")])
    assert not ops.metrics_allowed("not an address", [])
    served.state.metrics_check = lambda address: ops.metrics_allowed(address, [ipaddress.ip_network("10.0.0.0/8")]) \
        and not ipaddress.ip_address(address).is_loopback  # this test's own address counts as elsewhere
    try:
        r = httpx.get(served.url + "/metrics")
    finally:
        served.state.metrics_check = None
    assert r.status_code == 403 and r.json()["error"]["exit"] == 4
    assert httpx.get(served.url + "/metrics").status_code == 200


def test_health_is_503_while_stopping_and_readyz_checks_the_database(served):
    """/healthz and /readyz answer 200 when ready, 503 once the service is stopping."""
    assert httpx.get(served.url + "/readyz").json() == {"ok": True}
    served.state.stopping = True
    try:
        assert httpx.get(served.url + "/healthz").status_code == 503
        assert httpx.get(served.url + "/readyz").status_code == 503
    finally:
        served.state.stopping = False
    assert httpx.get(served.url + "/healthz").status_code == 200


def test_the_access_line_is_json_without_query_or_credentials(served, caplog):
    """One JSON line per request: its path without the query string, the status and request id, and neither the token nor the cookie."""
    token = served.token("tester")
    with caplog.at_level(logging.INFO, logger="anjian.access"):
        httpx.get(served.url + "/api/v1/show?unit=130827102", headers={"Authorization": f"Bearer {token}",
                                                                          "Cookie": "anjian_session=secretcookie",
                                                                          "X-Request-ID": "line-1"})
    records = [r for r in caplog.records if r.name == "anjian.access" and getattr(r, "fields", None)]
    line = json.loads(observe.JsonFormatter().format(records[-1]))
    assert line["path"] == "/api/v1/show" and line["request_id"] == "line-1" and line["method"] == "GET"
    assert line["status"] == 200 and line["client"] == "127.0.0.1" and line["level"] == "info"
    text = json.dumps(line)
    assert token not in text and "secretcookie" not in text and "130827102" not in text


def test_route_labels_are_bounded():
    """Metrics labels name a command or a fixed route, never an id, a unit or an unknown path."""
    assert observe.route_of("/api/v1/contact/add") == "/api/v1/contact/add"
    assert observe.route_of("/api/v1/show") == "/api/v1/show"
    assert observe.route_of("/api/v1/downloads/d123") == "/api/v1/downloads/{id}"
    assert observe.route_of("/api/v1/whatever/130827102") == "/api/v1/?"
    assert observe.route_of("/api/v1/show/130827102") == "/api/v1/show"
    assert observe.route_of("/units/130827102") == "other"


def test_reminder_passes_and_notices_are_counted():
    """The scheduler's pass results count passes (not the retries) and notices by kind, channel and status."""
    m = ops.Metrics()
    sent = SimpleNamespace(kind="reminder", channel="email")
    m.reminder_pass(SimpleNamespace(sent=[sent, sent], deferred=[], failed=[SimpleNamespace(kind="overdue", channel="webhook")]), False)
    m.reminder_pass(SimpleNamespace(sent=[], deferred=[sent], failed=[]), True)
    from prometheus_client import generate_latest

    text = generate_latest(m.registry).decode()
    assert "anjian_reminder_passes_total 1.0" in text
    assert 'anjian_notices_total{channel="email",kind="reminder",status="sent"} 2.0' in text
    assert 'anjian_notices_total{channel="email",kind="reminder",status="deferred"} 1.0' in text
    assert 'anjian_notices_total{channel="webhook",kind="overdue",status="failed"} 1.0' in text
