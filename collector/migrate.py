"""Alembic, driven from code: `collector db upgrade` and the start of `collector run` call `upgrade`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import make_url

import schemas
from collector.startup import StartupError, os_problem

MIGRATIONS = Path(schemas.__file__).parent / "migrations"


def alembic_config(database_url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = database_url
    return cfg


def ensure_sqlite_directory(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        directory = Path(url.database).parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            # Unlike a database server that is down, this never comes right by waiting.
            raise StartupError(
                "collector.database_url",
                f"the SQLite directory {directory} cannot be created: {os_problem(exc, directory)}",
            ) from None


def upgrade(database_url: str) -> None:
    """Bring the database schema to the newest revision (blocking; call outside the event loop)."""
    ensure_sqlite_directory(database_url)
    command.upgrade(alembic_config(database_url), "head")
