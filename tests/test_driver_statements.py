"""A batch's statements queued for one hop to SQLite's thread, on a real SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from collector.driver_statements import DriverStatements
from collector.store import create_engine

INSERT = "INSERT INTO t (x) VALUES (?) ON CONFLICT DO NOTHING"


def test_queued_statements_count_their_rows_and_a_failure_rolls_the_whole_batch_back(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER PRIMARY KEY CHECK (x > 0))"))
        async with engine.begin() as conn:
            statements = DriverStatements(conn)
            first = await statements.execute(INSERT, [(1,), (2,), (2,)])  # the repeat is skipped
            second = await statements.execute(INSERT, [(2,), (3,)])
            await statements.finish()
            counts = [statements.rowcount(first), statements.rowcount(second)]
        # A driver error surfaces as SQLAlchemy's, and the statements before it go with the transaction.
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                statements = DriverStatements(conn)
                await statements.execute(INSERT, [(4,)])
                await statements.execute(INSERT, [(0,)])
                await statements.finish()
        async with engine.connect() as conn:
            stored = list((await conn.execute(text("SELECT x FROM t ORDER BY x"))).scalars())
        await engine.dispose()
        return counts, stored

    counts, stored = asyncio.run(scenario())
    assert counts == [2, 1]
    assert stored == [1, 2, 3]
