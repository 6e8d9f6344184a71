"""`sentinel-bridge demo`, the README's first command, and its live view."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from sentinel_bridge_emulator.demo.view import (
    LEGEND,
    WIDTH,
    Screen,
    TenantLine,
    progress,
    render,
    summary_line,
)

pytestmark = pytest.mark.e2e

ESCAPE = re.compile(r"\x1b|\x9b")
LINES = [
    TenantLine("contoso", 12, 11, (2, 3), 4.2, None),
    TenantLine("fabrikam", 1, 0, (0, 0), None, "AuthError: [Errno 13] consent revoked " + "x" * 80),
]


def test_demo_runs_and_finds_nothing_lost(tmp_path: Path) -> None:
    """A short demo exits 0, with every incident delivered once and every analyst action
    mirrored to Sentinel; piped, its output is plain text of at most 100 columns that keeps
    the intro, the final table with its legend, and the summary."""
    result = subprocess.run(
        [sys.executable, "-m", "sentinel_bridge.cli", "demo", "--duration", "6",
         "--tenants", "2", "--state-dir", "state"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.startswith("sentinel-bridge demo: 2 tenants, store state/demo.db\n")
    assert (tmp_path / "state" / "demo.db").exists()
    assert "0 missing or behind, 0 duplicated" in out
    done, taken = map(int, re.search(r"mirrored to Sentinel: (\d+)/(\d+)", out).groups())
    assert done == taken
    assert result.stderr.rstrip().endswith("demo OK")
    assert re.search(r"^\| tenant +\| incidents \| delivered \| mirrored \| lag ", out, re.M)
    assert all(line in out for line in LEGEND)
    assert out.index("| tenant") < out.index("summary:")
    assert not ESCAPE.search(out + result.stderr)
    assert max(len(line) for line in out.splitlines()) <= WIDTH


def test_progress_bar_fills_with_time() -> None:
    """The progress bar is empty at the start, full at the end, and never overflows."""
    assert progress(0, 30).startswith("[>")
    assert progress(30, 30).startswith("[" + "=" * 30 + "]")
    assert progress(99, 30) == progress(30, 30)
    assert "Ctrl-C" in progress(5, 0)


def test_render_lists_one_row_per_tenant() -> None:
    """The plain view shows each tenant's counts, mirrored actions as done/taken, lag and a
    shortened last error, then the legend, within 100 columns and without escape codes."""
    text = render(LINES, "header")
    lines = text.splitlines()
    assert lines[0] == "header"
    rows = [line for line in lines if line.startswith(("| contoso", "| fabrikam"))]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    assert cells[0] == ["contoso", "12", "11", "2/3", "4 s", ""]
    assert cells[1][:5] == ["fabrikam", "1", "0", "0/0", "-"]
    assert cells[1][5].startswith("AuthError: [Errno 13] consent")
    assert lines[-len(LEGEND) :] == list(LEGEND)
    assert not ESCAPE.search(text)
    assert max(map(len, lines)) <= WIDTH


def test_piped_screen_prints_progress_lines_then_the_final_table() -> None:
    """Without a terminal the screen prints one short plain line per interval and the whole
    table only at the end, never cursor movements or colours."""
    out = io.StringIO()
    screen = Screen(every_seconds_when_piped=3600, console=Console(file=out, width=WIDTH))
    screen.show(LINES, 1, 30)
    screen.show(LINES, 2, 30)  # within the interval: nothing
    screen.close(LINES, 30, 30)
    printed = out.getvalue().splitlines()
    assert printed[0] == summary_line(LINES, "   1/30 s")
    assert "incidents 13, delivered 11, mirrored 2/3, max lag 4 s, failing 1" in printed[0]
    assert printed[1].startswith("sentinel-bridge demo  [=====")
    assert sum(1 for line in printed if line.startswith("| contoso")) == 1
    assert not ESCAPE.search(out.getvalue())
    assert max(map(len, printed)) <= WIDTH


def test_terminal_screen_redraws_in_place_and_keeps_the_last_frame() -> None:
    """On a terminal the table is redrawn over itself (cursor up, no screen clear) and the
    last frame stays when it closes."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system="standard")
    screen = Screen(console=console)
    screen.show(LINES, 1, 30)
    screen.show(LINES, 2, 30)
    screen.close(LINES, 30, 30)
    drawn = out.getvalue()
    assert "\x1b[H" not in drawn and "\x1b[2J" not in drawn and "\x1b[J" not in drawn
    assert "\x1b[1A" in drawn  # moved up over the previous frame
    assert drawn.count("contoso") == 3
    assert LEGEND[-1] in drawn[drawn.rindex("contoso") :]


def test_demo_with_thehive_as_the_queue_finds_nothing_lost(tmp_path: Path) -> None:
    """A short demo with `--queue thehive` exits 0, with every incident one current alert in
    its tenant's organisation and every analyst action taken in TheHive (at least one)
    mirrored to Sentinel."""
    result = subprocess.run(
        [sys.executable, "-m", "sentinel_bridge.cli", "demo", "--queue", "thehive",
         "--duration", "8", "--tenants", "2", "--state-dir", "state"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.startswith("sentinel-bridge demo: 2 tenants, store state/demo.db\n")
    assert "  queue: TheHive, one organisation per tenant\n" in out
    assert re.search(r"^  TheHive: [1-9]\d* alerts, 0 missing or behind, 0 duplicated$", out, re.M)
    done, taken = map(int, re.search(r"mirrored to Sentinel: (\d+)/(\d+)", out).groups())
    assert done == taken > 0
    assert result.stderr.rstrip().endswith("demo OK")
    assert not ESCAPE.search(out + result.stderr)
    assert max(len(line) for line in out.splitlines()) <= WIDTH
