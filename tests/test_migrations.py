"""The Alembic migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from collector.migrate import alembic_config, upgrade
from collector.store import create_engine
from schemas.models import Base, modelled


async def schema_drift(database_url: str) -> list:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"include_name": modelled}), Base.metadata
                )
            )
    finally:
        await engine.dispose()


def test_migrations_match_the_models_and_downgrade_cleanly(database_url: str) -> None:
    upgrade(database_url)
    assert asyncio.run(schema_drift(database_url)) == []
    command.downgrade(alembic_config(database_url), "base")
    drift = asyncio.run(schema_drift(database_url))
    assert {op[1].name for op in drift if op[0] == "add_table"} == set(Base.metadata.tables)
    upgrade(database_url)
    assert asyncio.run(schema_drift(database_url)) == []
