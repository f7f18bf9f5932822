"""The layering is checked by a tool (import-linter's contracts in pyproject.toml), not by review."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.integration
def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 kept, 0 broken" in result.stdout


def test_no_platform_name_in_the_core_outside_comments_and_the_demo() -> None:
    """`collector/` may mention a platform in comments, docstrings and the demo, never in code."""
    import io
    import tokenize

    platforms = ("tiktok", "shopee", "facebook", "tiki", "sendo", "lazada")
    found = []
    for path in sorted((ROOT / "collector").glob("*.py")):
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
        for token in tokens:
            is_docstring = token.type == tokenize.STRING and token.line.strip().startswith(('"""', "'''"))
            if token.type in (tokenize.COMMENT, tokenize.NL) or is_docstring:
                continue
            if any(p in token.string.lower() for p in platforms):
                found.append(f"{path.name}:{token.start[0]}: {token.line.strip()[:100]}")
    assert found == []
