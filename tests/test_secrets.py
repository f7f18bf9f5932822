"""Planted secrets (cookies, proxy credentials, a database password) never show up anywhere an operator
or a scraper of /metrics could read them: logs, metrics, exports, status, errors, check-config."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.harness import CLI, free_port, metric_value, scrape, service, simulator, wait_for

# Starts the simulator and the CLI as subprocesses.
pytestmark = pytest.mark.integration

COOKIE_SECRET = "PLANTED-COOKIE-7f3a"
PROXY_SECRET = "PLANTED-PROXY-91c2"
DB_SECRET = "PLANTED-DB-55e1"
APP_SECRET = "PLANTED-APP-SECRET-2d8c"
TOKEN_SECRET = "PLANTED-TOKEN-b71f"
REFRESH_SECRET = "PLANTED-REFRESH-09ae"
SECRETS = (COOKIE_SECRET, PROXY_SECRET, DB_SECRET, APP_SECRET, TOKEN_SECRET, REFRESH_SECRET)


def config(path: Path, database_url: str, sim: str, port: int) -> Path:
    path.write_text(
        f"""
[collector]
database_url = "{database_url}"
spool_dir = "{path.parent / "spool"}"
metrics_listen = "127.0.0.1:{port}"
default_interval = "1s"
flush_interval = "200ms"

[http]
timeout = "1s"
retries = 0

[platforms.tiktok]
base_urls = {{ web = "{sim}/www.tiktok.com", webcast = "{sim}/webcast.tiktok.com", partner = "{sim}/open-api.tiktokglobalshop.com", auth = "{sim}/auth.tiktok-shops.com" }}
min_interval = "1s"
requests_per_second = 50.0
proxies_env = "TEST_TIKTOK_PROXIES"

[platforms.facebook]
base_urls = {{ web = "{sim}/www.facebook.com" }}
min_interval = "1s"
requests_per_second = 50.0

[[targets]]
name = "fb-members-only"
platform = "facebook"
kind = "live"
page = "sanvat.taybac"
cookies_env = "TEST_FB_COOKIES"

[[targets]]
name = "shop-through-proxy"
platform = "tiktok"
kind = "live"
account = "shop_vn"

[[targets]]
name = "shop-api-token"
platform = "tiktok"
kind = "shop_lives"
app_key_env = "TEST_TTS_APP_KEY"
app_secret_env = "TEST_TTS_APP_SECRET"
shop_cipher_env = "TEST_TTS_CIPHER"
access_token_env = "TEST_TTS_TOKEN"

[[targets]]
name = "shop-api-refresh"
platform = "tiktok"
kind = "shop_lives"
app_key_env = "TEST_TTS_APP_KEY"
app_secret_env = "TEST_TTS_APP_SECRET"
shop_cipher_env = "TEST_TTS_CIPHER"
refresh_token_env = "TEST_TTS_REFRESH"
""",
        encoding="utf-8",
    )
    return path


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, env=env)
    return done.stdout + done.stderr


def test_planted_secrets_appear_nowhere(postgres_url: str, tmp_path: Path) -> None:
    # Trust authentication ignores the password, so a planted one still connects.
    database_url = postgres_url.replace("postgres@", f"postgres:{DB_SECRET}@")
    env = {
        **os.environ,
        "COLUMNS": "250",
        "TEST_FB_COOKIES": f"c_user=100001; xs={COOKIE_SECRET}",
        # Nothing listens on port 9: the proxied polls fail, which exercises the error paths too.
        "TEST_TIKTOK_PROXIES": f"http://scraper:{PROXY_SECRET}@127.0.0.1:9",
        # The shop API targets fail through that proxy too: signed calls and the token refresh (whose
        # query carries the app secret) take their error paths.
        "TEST_TTS_APP_KEY": "test-app-key",
        "TEST_TTS_APP_SECRET": APP_SECRET,
        "TEST_TTS_CIPHER": "TEST_CIPHER",
        "TEST_TTS_TOKEN": TOKEN_SECRET,
        "TEST_TTS_REFRESH": REFRESH_SECRET,
    }
    env.pop("COLLECTOR_DATABASE_URL", None)
    port = free_port()
    seen: dict[str, str] = {}
    with simulator("--freeze-at", "650") as sim:
        path = config(tmp_path / "c.toml", database_url, sim, port)
        seen["check-config"] = run(env, "check-config", "--config", str(path))
        seen["once"] = run(env, "--log-level", "debug", "once", "--config", str(path))
        with service(path, env=env, log_level="debug") as proc:
            try:
                body = wait_for(
                    lambda: (
                        (b := scrape(port))
                        and metric_value(b, "livestream_viewers", target="fb-members-only")
                        and metric_value(
                            b, "collector_polls_total", platform="tiktok", outcome="network_error"
                        )
                        and b
                    ),
                    timeout=30,
                )
                assert body, "the service never polled both targets"
                seen["metrics"] = body
            finally:
                proc.send_signal(signal.SIGTERM)
                seen["run log"] = proc.communicate(timeout=30)[0]
        seen["export"] = run(env, "export", "--config", str(path))
        seen["status"] = run(env, "status", "--config", str(path))
        bad = path.read_text().replace(
            'proxies_env = "TEST_TIKTOK_PROXIES"', 'proxies_env = "TEST_BAD_PROXIES"'
        )
        (tmp_path / "bad.toml").write_text(bad)
        seen["config error"] = run(
            {**env, "TEST_BAD_PROXIES": f"nonsense-{PROXY_SECRET}"},
            "check-config",
            "-c",
            str(tmp_path / "bad.toml"),
        )

    assert "fb-members-only" in seen["export"] and "viewers" in seen["export"]
    assert "network_error" in seen["status"]
    assert "token refresh failed" in seen["status"] and "shop-api-token" in seen["status"]
    assert "proxies_env: entry 1 is not a proxy URL" in seen["config error"]
    assert "***" in seen["check-config"]
    for where, text in seen.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret} leaked into {where}"
