"""Print the runtime dependencies named in a pyproject.toml, one per line, and those of the
extras named after it (`runtime-requirements.py pyproject.toml uvloop`).

The image installs exactly these (with constraints.txt) in a layer of their own, before any
source is copied: a change of the code then reuses that layer, and the emulator's and the
tests' libraries never reach the image.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def runtime_requirements(pyproject: Path, extras: list[str] | None = None) -> list[str]:
    """`[project] dependencies` as written (ranges, extras and markers kept), then those of
    each of `extras` (`[project.optional-dependencies]`); an unknown extra is a KeyError."""
    with pyproject.open("rb") as file:
        project = tomllib.load(file)["project"]
    listed = list(project["dependencies"])
    for extra in extras or []:
        listed += project["optional-dependencies"][extra]
    return listed


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
    print("\n".join(runtime_requirements(path, sys.argv[2:])))
