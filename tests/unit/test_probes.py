"""bot/probes.py: the checks /healthz and /readyz run, in both modes."""

from __future__ import annotations

from bot.probes import Probes


def test_no_checks_is_healthy_and_ready():
    probes = Probes("http")
    assert probes.health() == (200, {"ok": True, "mode": "http", "checks": {}})
    assert probes.ready()[0] == 200


def test_a_failing_readiness_check_makes_readyz_503_but_not_healthz():
    probes = Probes("socket_mode")
    probes.add("socket_mode", lambda: {"ok": False, "connections": 0})
    status, body = probes.ready()
    assert status == 503 and body["checks"]["socket_mode"] == {"ok": False, "connections": 0}
    status, body = probes.health()
    assert status == 200 and "socket_mode" not in body["checks"]


def test_a_failing_liveness_check_fails_both():
    probes = Probes("socket_mode")
    probes.add("supervisor", lambda: {"ok": False}, liveness=True)
    probes.add("socket_mode", lambda: {"ok": True})
    assert probes.health()[0] == 503
    status, body = probes.ready()
    assert status == 503 and set(body["checks"]) == {"supervisor", "socket_mode"}


def test_only_get_and_head_on_the_two_paths_are_probes():
    probes = Probes("http")
    assert probes.answer("GET", "/healthz")[0] == 200
    assert probes.answer("HEAD", "/readyz")[0] == 200
    assert probes.answer("POST", "/healthz") is None
    assert probes.answer("GET", "/slack/events") is None
