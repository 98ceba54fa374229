"""The development demo API, started the way scripts/run starts it: ``manage.py demo_api``.

Fixtures (import the ones a module uses):
- ``demo_api``: the running demo API (session): its ``host`` and its ``trust`` bundle.
- ``demo_api_settings``: settings of a development server that uses it: that one loopback
  host admitted (loopback in general still refused), its CA trusted.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 60

__all__ = ["DemoApi", "demo_api", "demo_api_settings", "free_port", "wait_for_port"]


@dataclass(frozen=True)
class DemoApi:
    host: str  # 127.0.0.1:<port>
    folder: Path

    @property
    def trust(self) -> str:
        return str(self.folder / "trust.pem")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, *, open_: bool = True, seconds: float = STARTUP_SECONDS) -> bool:
    """Wait (bounded) until the port accepts connections, or refuses them with ``open_=False``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(port) == open_:
            return True
        time.sleep(0.2)
    return False


def demo_env(folder: Path, port: int) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DEBUG": "true",
        "DEMO_API_DIR": str(folder),
        "DEMO_API_PORT": str(port),
    }


@pytest.fixture(scope="session")
def demo_api(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo-api")
    port = free_port()
    env = demo_env(folder, port)
    manage = [sys.executable, str(ROOT / "manage.py"), "demo_api"]
    subprocess.run([*manage, "--certificates-only"], env=env, check=True, cwd=ROOT)
    # Its own process group, as in scripts/run: stopping it stops gunicorn's worker too.
    server = subprocess.Popen(
        manage,
        env=env,
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not wait_for_port(port):
            pytest.fail(f"the demo API did not listen on 127.0.0.1:{port} in {STARTUP_SECONDS}s")
        yield DemoApi(host=f"127.0.0.1:{port}", folder=folder)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.fixture
def demo_api_settings(settings, demo_api):
    settings.DEBUG = True  # the demo data is refused outside development
    settings.DEMO_API_HOST = demo_api.host
    settings.DEMO_API_DIR = demo_api.folder
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    settings.OUTBOUND_LOOPBACK_HOSTS = [demo_api.host]
    settings.OUTBOUND_CA_BUNDLE = demo_api.trust
    return settings
