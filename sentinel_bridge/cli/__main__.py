"""`python -m sentinel_bridge.cli`."""

from .entry import main

raise SystemExit(main())
