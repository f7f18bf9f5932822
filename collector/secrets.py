"""Secrets (cookies, tokens) named in config by environment variable or file, never written in it.

A `Secret` prints as `***` everywhere (logs, repr, check-config); only `reveal()` gives the value, and
only the code that sends it to the platform calls it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class Secret:
    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source  # "env FOO" or "file /run/secrets/x": safe to show

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.source}, ***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self.source)


def read_secret(*, env_name: str | None, file_path: str | None, env: Mapping[str, str]) -> Secret:
    """Load a secret from an env var or a file; ValueError says which and why (never the value)."""
    if env_name and file_path:
        raise ValueError("give either the _env or the _file form, not both")
    if env_name:
        value = env.get(env_name, "")
        if not value.strip():
            raise ValueError(f"environment variable {env_name} is not set")
        return Secret(value.strip(), f"env {env_name}")
    if file_path:
        try:
            value = Path(file_path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read secret file {file_path}: {exc.strerror}") from None
        if not value.strip():
            raise ValueError(f"secret file {file_path} is empty")
        return Secret(value.strip(), f"file {file_path}")
    raise ValueError("missing")
