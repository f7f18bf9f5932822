"""Checks that the throwaway PostgreSQL server from tests/postgres.py really works."""

import asyncio

import asyncpg
import pytest

from tests.postgres import PostgresServer, plain_dsn

# Starts PostgreSQL.
pytestmark = pytest.mark.integration


async def _fetchval(url: str, sql: str) -> object:
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def test_fresh_database_answers_queries(postgres_url: str) -> None:
    """A per-test database accepts queries on a server of version 15 or newer."""
    assert asyncio.run(_fetchval(postgres_url, "SELECT 1")) == 1
    version = asyncio.run(_fetchval(postgres_url, "SHOW server_version"))
    assert int(str(version).split(".")[0]) >= 15
    tables = asyncio.run(
        _fetchval(postgres_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    )
    assert tables == 0


def test_collector_database_exists(postgres_server: PostgresServer) -> None:
    """The shared server comes with the `collector` database."""
    assert asyncio.run(_fetchval(postgres_server.url, "SELECT current_database()")) == "collector"


def test_stop_and_start_keep_port_and_data(postgres_server: PostgresServer, postgres_url: str) -> None:
    """Data written before stop() is still there after start(), on the same port."""
    port = postgres_server.port
    asyncio.run(_execute(postgres_url, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)"))

    postgres_server.stop()
    assert not postgres_server.running
    try:
        asyncio.run(_fetchval(postgres_url, "SELECT 1"))
    except OSError:
        pass
    else:
        raise AssertionError("server still answering after stop()")

    postgres_server.start()
    assert postgres_server.port == port
    assert asyncio.run(_fetchval(postgres_url, "SELECT v FROM kept")) == 42
