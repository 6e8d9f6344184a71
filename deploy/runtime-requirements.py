"""Print the runtime dependencies named in a pyproject.toml, one per line, without the extras.

The image installs exactly these (with constraints.txt) in a layer of their own, before any
source is copied: a change of the code then reuses that layer, and the emulator's and the
tests' libraries never reach the image.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def runtime_requirements(pyproject: Path) -> list[str]:
    """`[project] dependencies` as written (ranges, extras and markers kept)."""
    with pyproject.open("rb") as file:
        return list(tomllib.load(file)["project"]["dependencies"])


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
    print("\n".join(runtime_requirements(path)))
