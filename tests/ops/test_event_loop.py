"""`[runtime]`: which event loop the bridge runs on, the uvloop requirement, the GC tuning."""

from __future__ import annotations

import gc
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel_bridge.config import load_settings
from sentinel_bridge.core.errors import ConfigError
from sentinel_bridge.runtime.event_loop import (
    GC_THRESHOLDS,
    backend_options,
    tune_gc,
    uses_uvloop,
    uvloop_installed,
)
from tests.test_config import BASE, write


@pytest.fixture
def no_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without uvloop: find_spec says so (other modules are still found)."""
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> object:
        return None if name == "uvloop" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_auto_takes_uvloop_exactly_when_it_is_installed() -> None:
    """ "auto" follows the installation; "asyncio" is the off switch; "uvloop" insists."""
    assert uses_uvloop("auto") is uvloop_installed()
    assert backend_options("asyncio") == {"use_uvloop": False}
    assert backend_options("uvloop") == {"use_uvloop": True}


@pytest.mark.usefixtures("no_uvloop")
def test_auto_without_uvloop_runs_on_asyncio() -> None:
    """Without uvloop installed, "auto" is plain asyncio, not an error."""
    assert uvloop_installed() is False
    assert backend_options("auto") == {"use_uvloop": False}


def test_the_default_is_auto_with_gc_tuning(tmp_path: Path) -> None:
    """A file without `[runtime]` runs on "auto" with the GC tuned."""
    runtime = load_settings(write(tmp_path, BASE)).runtime
    assert (runtime.event_loop, runtime.gc_tuning) == ("auto", True)


@pytest.mark.usefixtures("no_uvloop")
def test_requiring_uvloop_where_it_is_missing_names_the_key(tmp_path: Path) -> None:
    """event_loop = "uvloop" without uvloop installed: a config error at runtime.event_loop
    that says how to install it."""
    path = write(tmp_path, BASE + '\n[runtime]\nevent_loop = "uvloop"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    [(key, reason)] = caught.value.problems
    assert key == "runtime.event_loop"
    assert "uvloop is not installed" in reason and "sentinel-bridge[uvloop]" in reason


def test_an_unknown_loop_is_refused(tmp_path: Path) -> None:
    """Only auto, uvloop and asyncio are loops the bridge knows."""
    path = write(tmp_path, BASE + '\n[runtime]\nevent_loop = "trio"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert [key for key, _ in caught.value.problems] == ["runtime.event_loop"]


@pytest.fixture
def gc_state() -> Iterator[None]:
    """Whatever a test does to the collector is undone after it."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("gc_state")
def test_gc_tuning_freezes_the_heap_and_raises_the_thresholds() -> None:
    """After tune_gc(True) the objects alive are frozen and collections are rarer."""
    gc.unfreeze()
    tune_gc(True)
    assert gc.get_freeze_count() > 1000
    assert gc.get_threshold() == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] > 700


@pytest.mark.usefixtures("gc_state")
def test_gc_tuning_off_leaves_the_collector_alone() -> None:
    """gc_tuning = false: CPython's thresholds and nothing frozen."""
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    tune_gc(False)
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == (700, 10, 10)
