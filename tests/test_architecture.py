"""The import contracts in pyproject.toml catch a wrong import, and name it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


@pytest.fixture
def checkout(tmp_path):
    for package in ("orchestration", "cloudfunctions"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def lint(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=where,
        env={"PYTHONPATH": str(where), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_layout_as_it_is_keeps_every_contract(checkout):
    result = lint(checkout)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("module", "line", "named"),
    [
        (
            "orchestration/runs/engine.py",
            "from cloudfunctions.step import execution  # noqa",
            "orchestration.runs.engine -> cloudfunctions.step.execution",
        ),
        (
            "cloudfunctions/step/checks.py",
            "import requests  # noqa",
            "cloudfunctions.step.checks -> requests",
        ),
        (
            "cloudfunctions/cel/messages.py",
            "from cloudfunctions.http import errors  # noqa",
            "cloudfunctions.cel.messages -> cloudfunctions.http.errors",
        ),
        (
            "cloudfunctions/http/errors.py",
            "from cloudfunctions.step import checks  # noqa",
            "cloudfunctions.http.errors -> cloudfunctions.step.checks",
        ),
    ],
)
def test_a_wrong_import_breaks_a_contract_and_is_named(checkout, module, line, named):
    append(checkout / module, line)

    result = lint(checkout)

    assert result.returncode == 1
    assert "BROKEN" in result.stdout
    assert named in result.stdout
