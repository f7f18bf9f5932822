"""Debian tools the deploy tests drive (promtool, prometheus, systemd-analyze)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def require_tool(name: str, package: str) -> str:
    """The tool's path; outside CI a missing tool skips, with CI=true it fails (.ci/run installs it)."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} not found (Debian package {package!r}; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path
