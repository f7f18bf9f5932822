"""The throwaway PostgreSQL server of the benchmarks' PostgreSQL rows (the test suite's, tests/postgres.py)."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.postgres import PostgresServer


@contextmanager
def throwaway_postgres(rows: str) -> Iterator[PostgresServer | None]:
    """A started server, stopped and removed afterwards; None (and why, naming `rows`) when there is
    none to start here."""
    try:
        from tests.postgres import PostgresServer, find_postgres_bindir
    except ImportError:
        print(f"{rows} skipped: run from the repository root", file=sys.stderr)
        yield None
        return
    if find_postgres_bindir() is None:
        print(f"{rows} skipped: install Debian's postgresql package")
        yield None
        return
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.cleanup()


def fresh_databases(server: PostgresServer, prefix: str) -> Callable[[], str]:
    """Each call creates an empty database and returns its URL."""
    count = itertools.count()

    def fresh() -> str:
        name = f"{prefix}_{next(count)}"
        server.execute(f"CREATE DATABASE {name}")
        return server.url_for(name)

    return fresh
