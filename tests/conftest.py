import os

import pytest
from hypothesis import HealthCheck, settings

from tests.postgres import postgres_server, postgres_url  # noqa: F401

# CI fuzzes every parser with a few thousand cases; local runs stay quick.
settings.register_profile(
    "ci", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Real PostgreSQL, Chromium and subprocesses take seconds to start and are what a busy machine slows
    # down most, so the fast run leaves every one of them out.
    for item in items:
        if item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.slow)
