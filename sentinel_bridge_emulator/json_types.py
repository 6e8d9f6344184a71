"""The emulator's own name for a JSON object (it shares no code with the bridge it checks)."""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]
