"""Shared fixtures of the adversarial suite, and the one-line summary it prints at the end."""

from __future__ import annotations

import os
import socket

import pytest

from tests.factories import MARKERS

_HERE = os.path.dirname(os.path.abspath(__file__))
# One pytest session per process: the summary reads what this run recorded.
_OUTCOMES: dict[str, str] = {}
_LEAKS: list[tuple[str, int]] = []
# The hostile-upstream family: spellings of secrets echoed back, and how many came through.
_HOSTILE = {"spellings": 0, "leaked": 0}


def tally_spellings(generated: int, leaked: int) -> None:
    """Count echoed spellings of secrets, and those found again, for the summary line."""
    _HOSTILE["spellings"] += generated
    _HOSTILE["leaked"] += leaked


def pytest_runtest_logreport(report):
    # pytest calls a conftest's runtest hooks only for items under its folder; the path
    # check keeps the count right should this file ever be loaded as a plugin.
    path = os.path.abspath(str(report.fspath)) if report.fspath else ""
    if not path.startswith(_HERE + os.sep):
        return
    outcomes = _OUTCOMES
    previous = outcomes.get(report.nodeid)
    if report.when == "call" or report.failed or report.skipped:
        # A failure in setup or teardown spoils an item that passed its call.
        if previous == "failed":
            return
        outcomes[report.nodeid] = "xfailed" if hasattr(report, "wasxfail") else report.outcome
    elif previous is None:
        outcomes[report.nodeid] = "pending"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    outcomes = _OUTCOMES
    if not outcomes:
        return
    cases = sum(1 for outcome in outcomes.values() if outcome != "skipped")
    passed = sum(1 for outcome in outcomes.values() if outcome == "passed")
    leaked = sum(hits for _, hits in _LEAKS)
    line = f"security: {cases} cases, {passed} refused or handled, {leaked} secrets leaked"
    if _HOSTILE["spellings"]:
        line += (
            f"; hostile upstream: {_HOSTILE['spellings']} spellings generated,"
            f" {_HOSTILE['leaked']} leaked"
        )
    terminalreporter.write_line(line)


@pytest.fixture
def scan(request):
    """Return ``scan(where, text) -> hits``: count marker secrets in text, for the summary."""

    def _scan(where: str, text: object) -> int:
        text = text if isinstance(text, str) else repr(text)
        hits = sum(text.count(marker) for marker in (*MARKERS.values(), *EXTRA_MARKERS))
        _LEAKS.append((f"{request.node.nodeid} {where}", hits))
        return hits

    return _scan


# Secrets the suite plants besides the factories' own.
EXTRA_MARKERS = ("SECRET-MARKER-client-2b9d", "SECRET-MARKER-token-e41a")


@pytest.fixture
def no_loopback(settings, tls_ca_bundle):
    """The production rule: loopback refused like any private address; the test CA trusted."""
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    settings.OUTBOUND_CA_BUNDLE = tls_ca_bundle
    settings.OUTBOUND_CONNECT_TIMEOUT_SECONDS = 0.5
    return settings


@pytest.fixture
def connects(monkeypatch):
    """Record the address of every outbound socket connect() and let it proceed.

    A spy, not a mock: the connection is really made; the list proves where it went.
    """
    seen: list[tuple] = []
    original = socket.socket.connect

    def connect(self, address):
        seen.append(address)
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


@pytest.fixture
def resolver(monkeypatch):
    """Answer DNS for made-up names; other names resolve as usual.

    Mocked because no DNS server can be run here: ``resolver["name"] = ["ip", ...]``.
    """
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in answers:
            return real(host, port, family, type, proto, flags)
        results = []
        for address in answers[name]:
            if ":" in address:
                results.append(
                    (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, int(port), 0, 0))
                )
            else:
                results.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port))))
        return results

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers
