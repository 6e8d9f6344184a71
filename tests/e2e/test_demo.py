"""`sentinel-bridge demo`, the README's first command, and its live view."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sentinel_bridge_emulator.demo.view import TenantLine, progress, render

pytestmark = pytest.mark.e2e


def test_demo_runs_and_finds_nothing_lost(tmp_path: Path) -> None:
    """A short demo exits 0, with every incident delivered once and every analyst action
    mirrored to Sentinel."""
    result = subprocess.run(
        [sys.executable, "-m", "sentinel_bridge.cli", "demo", "--duration", "6",
         "--tenants", "2", "--state-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary = next(line for line in result.stdout.splitlines() if line.startswith("summary:"))
    assert "0 missing or behind, 0 duplicated" in summary
    done, taken = map(int, re.search(r"mirrored to Sentinel: (\d+)/(\d+)", summary).groups())
    assert done == taken
    assert "demo OK" in result.stderr
    assert "tenant" in result.stdout and "delivered" in result.stdout


def test_progress_bar_fills_with_time() -> None:
    """The progress bar is empty at the start, full at the end, and never overflows."""
    assert progress(0, 30).startswith("[>")
    assert progress(30, 30).startswith("[" + "=" * 30 + "]")
    assert progress(99, 30) == progress(30, 30)
    assert "Ctrl-C" in progress(5, 0)


def test_render_lists_one_row_per_tenant() -> None:
    """The view shows each tenant's counts, mirrored actions as done/taken, lag and error."""
    text = render(
        [
            TenantLine("contoso", 12, 11, (2, 3), 4.2, None),
            TenantLine("fabrikam", 1, 0, (0, 0), None, "AuthError: consent revoked"),
        ],
        "header",
    )
    lines = text.splitlines()
    assert lines[0] == "header"
    assert lines[3].split()[:5] == ["contoso", "12", "11", "2/3", "4"]
    assert lines[4].split()[:5] == ["fabrikam", "1", "0", "0/0", "-"]
    assert lines[4].endswith("AuthError: consent revoked")
