"""sentinel-bridge: Microsoft Sentinel incidents mirrored into a central SOC alert queue."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def _installed_version() -> str:
    # The distribution's metadata is the one place the version is set (pyproject.toml); a
    # source tree that was never installed has none, and says so rather than guess.
    try:
        return version("sentinel-bridge")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _installed_version()
