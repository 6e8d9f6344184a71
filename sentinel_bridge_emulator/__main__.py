"""`python -m sentinel_bridge_emulator`: the same as `sentinel-bridge emulator`."""

from .standalone import run_standalone

raise SystemExit(run_standalone())
