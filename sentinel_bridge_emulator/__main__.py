"""`python -m sentinel_bridge_emulator`: the same command as `sentinel-bridge emulator`."""

from .commands import main

raise SystemExit(main())
