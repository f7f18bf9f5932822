import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.postgres import postgres_server, postgres_url  # noqa: F401

# CI fuzzes every parser with a few thousand cases; local runs stay quick.
settings.register_profile(
    "ci", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh SQLite file, then the throwaway PostgreSQL: database tests run on both backends."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/test.db"
    return request.getfixturevalue("postgres_url")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Real PostgreSQL, Chromium and subprocesses take seconds to start and are what a busy machine slows
    # down most, so the fast run leaves every one of them out.
    for item in items:
        if item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.slow)
