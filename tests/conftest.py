import os

from hypothesis import HealthCheck, settings

from tests.postgres import postgres_server, postgres_url  # noqa: F401

# CI fuzzes every parser with a few thousand cases; local runs stay quick.
settings.register_profile(
    "ci", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")
