"""Tests for collector.config: every problem named by key path, exact messages, all at once."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from collector.adapters import registered_adapters
from collector.cli import main
from collector.config import (
    DATABASE_URL_ENV,
    METRICS_LISTEN_ENV,
    CollectorSettings,
    ConfigError,
    HostPort,
    HttpSettings,
    build_config,
    load_config,
    parse_duration,
)
from collector.describe import describe
from simulator.app import demo_env

ADAPTERS = registered_adapters()

ROOT = Path(__file__).resolve().parent.parent
SIMULATOR = "http://127.0.0.1:8900"
DURATION_HINT = '(use e.g. "500ms", "20s", "5m", "1h", "14d")'
COLLECTOR_KEYS = (
    "batch_size, database_url, default_interval, flush_interval, jitter, max_backoff, max_concurrency, "
    "metrics_listen, pending_limit, raw_retention, shutdown_grace, snapshot_success_every, spool_dir, "
    "spool_max_bytes"
)
CONFIG_TOML_TARGETS = tomllib.loads((ROOT / "config.toml").read_text())["targets"]
PER_PLATFORM = ", ".join(
    f"{p} {sum(t['platform'] == p for t in CONFIG_TOML_TARGETS)}"
    for p in sorted({t["platform"] for t in CONFIG_TOML_TARGETS})
)
TARGET_KEYS = "account, campaign, enabled, interval, keep_every_body, kind, name, platform, scheduled_start"


def target(**overrides: Any) -> dict[str, Any]:
    """A valid tiktok live target; `None` drops a key."""
    item: dict[str, Any] = {"name": "a", "platform": "tiktok", "kind": "live", "account": "shop_vn"}
    item.update(overrides)
    return {k: v for k, v in item.items() if v is not None}


def problems(data: dict[str, Any], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as exc_info:
        build_config(data, adapters=ADAPTERS, source="test.toml", env={} if env is None else env)
    assert str(exc_info.value) == "\n".join(exc_info.value.problems)
    return exc_info.value.problems


# --- parse_duration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("20s", 20.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("14d", 14 * 86400.0),
        ("1.5s", 1.5),
        ("0s", 0.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a duration string like \"30s\", got ''"),
        ("   ", "expected a duration string like \"30s\", got '   '"),
        (5, 'expected a duration string like "30s", got 5'),
        ("s", f"bad duration 's' {DURATION_HINT}"),
        ("5", f"bad duration '5' {DURATION_HINT}"),
        ("5 x", f"bad duration '5 x' {DURATION_HINT}"),
        ("1h-5m", f"bad duration '1h-5m' {DURATION_HINT}"),
        ("-5s", f"bad duration '-5s' {DURATION_HINT}"),
        ("10 parsecs", f"bad duration '10 parsecs' {DURATION_HINT}"),
        ("5S", f"bad duration '5S' {DURATION_HINT}"),
        ("5s!", f"bad duration '5s!' {DURATION_HINT}"),
    ],
)
def test_parse_duration_rejects(text: Any, message: str) -> None:
    with pytest.raises(ValueError) as exc_info:
        parse_duration(text)
    assert str(exc_info.value) == message


# --- targets --------------------------------------------------------------------------------------


def test_unknown_platform() -> None:
    data = {"targets": [target(name="a"), target(name="b"), target(name="c", platform="tiktk")]}
    assert problems(data) == [
        "targets[2].platform: unknown platform 'tiktk' (known: facebook, lazada, sendo, shopee, tiki, tiktok)"
    ]


def test_missing_platform_is_reported_as_unknown_empty_platform() -> None:
    assert problems({"targets": [target(platform=None)]}) == [
        "targets[0].platform: unknown platform '' (known: facebook, lazada, sendo, shopee, tiki, tiktok)"
    ]


def test_unknown_kind() -> None:
    assert problems({"targets": [target(kind="video")]}) == [
        "targets[0].kind: unknown kind 'video' for tiktok (known: live, hashtag, shop_lives)"
    ]


def test_missing_required_field() -> None:
    assert problems({"targets": [target(account=None)]}) == [
        "targets[0].account: missing (required for tiktok live targets)"
    ]


def test_empty_required_field_counts_as_missing() -> None:
    assert problems({"targets": [target(account="")]}) == [
        "targets[0].account: missing (required for tiktok live targets)"
    ]


def test_unknown_key_in_target_lists_expected_keys() -> None:
    assert problems({"targets": [target(acount="shop_vn")]}) == [
        f"targets[0].acount: unknown key for tiktok live (expected one of: {TARGET_KEYS})"
    ]


def test_duplicate_target_names() -> None:
    assert problems({"targets": [target(name="a"), target(name="a")]}) == [
        "targets[1].name: duplicate target name 'a' (also targets[0])"
    ]


def test_duplicate_names_point_at_the_first_occurrence() -> None:
    data = {"targets": [target(name="a"), target(name="b"), target(name="a"), target(name="b")]}
    assert problems(data) == [
        "targets[2].name: duplicate target name 'a' (also targets[0])",
        "targets[3].name: duplicate target name 'b' (also targets[1])",
    ]


@pytest.mark.parametrize("name", ["Bad Name", "UPPER", "-leading-dash", "x" * 64, "tab\there", "abc\n"])
def test_bad_target_name(name: str) -> None:
    assert problems({"targets": [target(name=name)]}) == [
        f"targets[0].name: {name!r} must be lower-case letters, digits, '.', '_' or '-'"
    ]


@pytest.mark.parametrize("name", ["a", "lai-chau-shop", "shop_vn.2025", "0", "x" * 63])
def test_good_target_name(name: str) -> None:
    config = build_config({"targets": [target(name=name)]}, adapters=ADAPTERS, source="t", env={})
    assert config.targets[0].name == name


def test_missing_target_name() -> None:
    assert problems({"targets": [target(name=None)]}) == [
        "targets[0].name: missing (every target needs a unique name)"
    ]


@pytest.mark.parametrize(
    ("interval", "message"),
    [
        ("10 parsecs", f"bad duration '10 parsecs' {DURATION_HINT}"),
        ("-5s", f"bad duration '-5s' {DURATION_HINT}"),
        ("0s", "must be greater than zero, got '0s'"),
        (5, 'expected a duration string like "30s", got 5'),
    ],
)
def test_bad_target_interval(interval: Any, message: str) -> None:
    assert problems({"targets": [target(interval=interval)]}) == [f"targets[0].interval: {message}"]


def test_interval_below_platform_min_interval() -> None:
    assert problems({"targets": [target(interval="5s")]}) == [
        "targets[0].interval: 5s is faster than platforms.tiktok.min_interval 10s"
    ]


def test_interval_below_configured_min_interval() -> None:
    data = {"platforms": {"tiktok": {"min_interval": "1m"}}, "targets": [target(interval="1500ms")]}
    assert problems(data) == ["targets[0].interval: 1500ms is faster than platforms.tiktok.min_interval 1m"]


def test_interval_equal_to_min_interval_is_fine() -> None:
    config = build_config({"targets": [target(interval="10s")]}, adapters=ADAPTERS, source="t", env={})
    assert config.targets[0].interval == 10.0


def test_target_interval_defaults_to_collector_default_interval() -> None:
    data = {"collector": {"default_interval": "45s"}, "targets": [target()]}
    config = build_config(data, adapters=ADAPTERS, source="t", env={})
    assert config.targets[0].interval == 45.0


def test_target_wrong_types() -> None:
    assert problems({"targets": [target(enabled="yes", campaign=7)]}) == [
        "targets[0].campaign: expected str, got int 7",
        "targets[0].enabled: expected bool, got str 'yes'",
    ]


def test_targets_must_be_an_array_of_tables() -> None:
    assert problems({"targets": {"name": "a"}}) == ["targets: expected an array of tables ([[targets]])"]
    assert problems({"targets": [1]}) == ["targets[0]: expected a table"]


def test_target_fields_are_parsed() -> None:
    data = {"targets": [target(interval="20s", campaign="mega", enabled=False), target(name="b")]}
    config = build_config(data, adapters=ADAPTERS, source="t", env={})
    first, second = config.targets
    assert first.params == {"account": "shop_vn"}
    assert (first.interval, first.campaign, first.enabled) == (20.0, "mega", False)
    assert (second.campaign, second.enabled) == (None, True)
    assert config.active_targets() == [second]


# --- top level, [collector], [http], [platforms] ---------------------------------------------------


def test_unknown_top_level_key() -> None:
    assert problems({"colector": {}}) == [
        "colector: unknown key (expected one of: browser, campaigns, collector, fleet, http, platforms, targets)"
    ]


def test_unknown_key_in_collector() -> None:
    assert problems({"collector": {"max_concurency": 8}}) == [
        f"collector.max_concurency: unknown key (expected one of: {COLLECTOR_KEYS})"
    ]


def test_unknown_key_in_http() -> None:
    assert problems({"http": {"timeuot": "5s"}}) == [
        "http.timeuot: unknown key (expected one of: headers, max_redirects, proxy, retries, retry_backoff, timeout, user_agent)"
    ]


def test_section_must_be_a_table() -> None:
    assert problems({"collector": 1}) == ["collector: expected a table, got int"]


def test_unknown_platform_table() -> None:
    assert problems({"platforms": {"tiktk": {"min_interval": "5s"}}}) == [
        "platforms.tiktk: unknown platform 'tiktk' (known: facebook, lazada, sendo, shopee, tiki, tiktok)"
    ]


def test_unknown_key_in_platform_table() -> None:
    assert problems({"platforms": {"tiktok": {"min_intervall": "5s"}}}) == [
        "platforms.tiktok.min_intervall: unknown key (expected one of: base_urls, breaker_failures, breaker_reset, max_concurrency, min_interval, proxies_env, proxies_file, requests_per_second)"
    ]


def test_unknown_base_urls_key() -> None:
    assert problems({"platforms": {"tiktok": {"base_urls": {"api": "https://api.tiktok.com"}}}}) == [
        "platforms.tiktok.base_urls.api: unknown key for platform tiktok (expected one of: auth, partner, web, webcast)"
    ]


@pytest.mark.parametrize(
    ("url", "shown"),
    [("ftp://www.tiktok.com", "'ftp://www.tiktok.com'"), ("www.tiktok.com", "'www.tiktok.com'"), (5, "5")],
)
def test_bad_base_url(url: Any, shown: str) -> None:
    assert problems({"platforms": {"tiktok": {"base_urls": {"web": url}}}}) == [
        f"platforms.tiktok.base_urls.web: expected an http(s) URL, got {shown}"
    ]


def test_base_urls_override_one_key_and_strip_trailing_slash() -> None:
    data = {"platforms": {"tiktok": {"base_urls": {"web": "http://127.0.0.1:8900/www/"}}}}
    urls = build_config(data, adapters=ADAPTERS, source="t", env={}).platforms["tiktok"].base_urls
    assert urls == {
        "web": "http://127.0.0.1:8900/www",
        "webcast": "https://webcast.tiktok.com",
        "partner": "https://open-api.tiktokglobalshop.com",
        "auth": "https://auth.tiktok-shops.com",
    }


def test_bad_min_interval() -> None:
    assert problems({"platforms": {"tiktok": {"min_interval": "0s"}}}) == [
        "platforms.tiktok.min_interval: must be greater than zero, got '0s'"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("64", "expected int, got str '64'"),
        (True, "expected int, got bool True"),
        (64.0, "expected int, got float 64.0"),
        (0, "must be at least 1"),
        (-1, "must be at least 1"),
    ],
)
def test_bad_max_concurrency(value: Any, message: str) -> None:
    assert problems({"collector": {"max_concurrency": value}}) == [f"collector.max_concurrency: {message}"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("batch_size", 0, "must be at least 1"),
        ("pending_limit", "many", "expected int, got str 'many'"),
        ("snapshot_success_every", False, "expected int, got bool False"),
        ("jitter", 1.0, "must be in [0, 1)"),
        ("jitter", -0.1, "must be in [0, 1)"),
        ("jitter", 1, "must be in [0, 1)"),
        ("jitter", "0.1", "expected float, got str '0.1'"),
        ("default_interval", "soon", f"bad duration 'soon' {DURATION_HINT}"),
        ("shutdown_grace", "0ms", "must be greater than zero, got '0ms'"),
        ("flush_interval", 1, 'expected a duration string like "30s", got 1'),
        ("raw_retention", "-14d", f"bad duration '-14d' {DURATION_HINT}"),
    ],
)
def test_bad_collector_values(key: str, value: Any, message: str) -> None:
    assert problems({"collector": {key: value}}) == [f"collector.{key}: {message}"]


def test_jitter_accepts_a_whole_number() -> None:
    # TOML writes `jitter = 0` as an integer; it must not be rejected as "expected float".
    assert (
        build_config({"collector": {"jitter": 0}}, adapters=ADAPTERS, source="t", env={}).collector.jitter
        == 0.0
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("localhost", "expected \"host:port\", got 'localhost'"),
        (9108, 'expected "host:port", got 9108'),
        ("localhost:99999", "bad port in 'localhost:99999'"),
        ("localhost:", "bad port in 'localhost:'"),
        ("localhost:http", "bad port in 'localhost:http'"),
    ],
)
def test_bad_metrics_listen(value: Any, message: str) -> None:
    assert problems({"collector": {"metrics_listen": value}}) == [f"collector.metrics_listen: {message}"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.0.0.0:9000", HostPort("0.0.0.0", 9000)),
        ("[::1]:9108", HostPort("::1", 9108)),
        ("localhost:0", HostPort("localhost", 0)),
    ],
)
def test_good_metrics_listen(value: str, expected: HostPort) -> None:
    config = build_config({"collector": {"metrics_listen": value}}, adapters=ADAPTERS, source="t", env={})
    assert config.collector.metrics_listen == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:p@db/x", "unsupported driver 'mysql' (use sqlite+aiosqlite or postgresql+asyncpg)"),
        (
            "sqlite:///data/collector.db",
            "unsupported driver 'sqlite' (use sqlite+aiosqlite or postgresql+asyncpg)",
        ),
        (
            "postgresql://u@db/x",
            "unsupported driver 'postgresql' (use sqlite+aiosqlite or postgresql+asyncpg)",
        ),
        ("not a url", 'not a database URL (e.g. "sqlite+aiosqlite:///data/collector.db")'),
        (5, "expected a string, got int"),
    ],
)
def test_bad_database_url(url: Any, message: str) -> None:
    assert problems({"collector": {"database_url": url}}) == [f"collector.database_url: {message}"]


def test_http_header_values_must_be_strings() -> None:
    assert problems({"http": {"headers": {"X-Count": 1}}}) == ["http.headers.X-Count: expected str, got int"]


# --- COLLECTOR_DATABASE_URL -----------------------------------------------------------------------


def test_env_database_url_overrides_the_file() -> None:
    url = "postgresql+asyncpg://u:p@db/collector"
    data = {"collector": {"database_url": "sqlite+aiosqlite:///x.db"}}
    config = build_config(data, adapters=ADAPTERS, source="t", env={DATABASE_URL_ENV: url})
    assert config.collector.database_url == url


def test_empty_env_database_url_is_ignored() -> None:
    config = build_config({}, adapters=ADAPTERS, source="t", env={DATABASE_URL_ENV: ""})
    assert config.collector.database_url == CollectorSettings().database_url


def test_invalid_env_database_url_names_the_variable() -> None:
    assert problems({}, env={DATABASE_URL_ENV: "mysql://u@db/x"}) == [
        "COLLECTOR_DATABASE_URL (environment): unsupported driver 'mysql' "
        "(use sqlite+aiosqlite or postgresql+asyncpg)"
    ]
    assert problems({}, env={DATABASE_URL_ENV: "nope"}) == [
        'COLLECTOR_DATABASE_URL (environment): not a database URL (e.g. "sqlite+aiosqlite:///data/collector.db")'
    ]


def test_env_none_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql+asyncpg://u@db/env")
    assert (
        build_config({}, adapters=ADAPTERS, source="t").collector.database_url
        == "postgresql+asyncpg://u@db/env"
    )


# --- all problems at once -------------------------------------------------------------------------


def test_several_problems_reported_at_once_in_order() -> None:
    data = {
        "collector": {"max_concurrency": "64", "metrics_listen": "nohost", "bogus": 1},
        "http": {"timeout": "0s"},
        "platforms": {"zalo": {}, "tiktok": {"base_urls": {"web": "ftp://x"}}},
        "targets": [
            target(name="a", interval="5s"),
            target(name="a", platform="tiktk"),
            target(name="c", account=None, extra="x"),
        ],
        "extra": True,
    }
    assert problems(data, env={DATABASE_URL_ENV: "mysql://db/x"}) == [
        "collector.metrics_listen: expected \"host:port\", got 'nohost'",
        "collector.max_concurrency: expected int, got str '64'",
        f"collector.bogus: unknown key (expected one of: {COLLECTOR_KEYS})",
        "COLLECTOR_DATABASE_URL (environment): unsupported driver 'mysql' "
        "(use sqlite+aiosqlite or postgresql+asyncpg)",
        "http.timeout: must be greater than zero, got '0s'",
        "platforms.zalo: unknown platform 'zalo' (known: facebook, lazada, sendo, shopee, tiki, tiktok)",
        "platforms.tiktok.base_urls.web: expected an http(s) URL, got 'ftp://x'",
        "targets[0].interval: 5s is faster than platforms.tiktok.min_interval 10s",
        "targets[1].name: duplicate target name 'a' (also targets[0])",
        "targets[1].platform: unknown platform 'tiktk' (known: facebook, lazada, sendo, shopee, tiki, tiktok)",
        "targets[2].account: missing (required for tiktok live targets)",
        f"targets[2].extra: unknown key for tiktok live (expected one of: {TARGET_KEYS})",
        "extra: unknown key (expected one of: browser, campaigns, collector, fleet, http, platforms, targets)",
    ]


# --- files ----------------------------------------------------------------------------------------


def test_load_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as exc_info:
        load_config(path, adapters=ADAPTERS, env={})
    assert exc_info.value.problems == [f"{path}: file not found"]


def test_load_config_toml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[collector]\nmax_concurrency = \n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc_info:
        load_config(path, adapters=ADAPTERS, env={})
    assert exc_info.value.problems == [f"{path}: not valid TOML: Invalid value (at line 2, column 19)"]


def test_load_config_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[collector]\ndatabase_url = 'caf\xe9'\n")
    with pytest.raises(ConfigError) as exc_info:
        load_config(path, adapters=ADAPTERS, env={})
    assert exc_info.value.problems == [f"{path}: not valid TOML: not UTF-8 text"]


def test_load_config_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc_info:
        load_config(tmp_path, adapters=ADAPTERS, env={})
    assert exc_info.value.problems == [f"{tmp_path}: cannot read: Is a directory"]


def test_load_config_records_source_and_validates(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[targets]]\nname = "x"\nplatform = "tiktok"\nkind = "live"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as exc_info:
        load_config(path, adapters=ADAPTERS, env={})
    assert exc_info.value.problems == ["targets[0].account: missing (required for tiktok live targets)"]
    path.write_text('[[targets]]\nname = "x"\nplatform = "tiktok"\nkind = "live"\naccount = "y"\n')
    assert load_config(str(path), adapters=ADAPTERS, env={}).source == str(path)


def test_production_config_loads() -> None:
    config = load_config(ROOT / "config.toml", adapters=ADAPTERS, env={})
    assert [t.name for t in config.targets] == [
        "lai-chau-shop",
        "nongsan-lai-chau",
        "ocop-lai-chau",
        "tag-nongsanlaichau",
        "tag-lienketvunglaichau",
        "danang-trade-week",
        "facebook-laichau-ocop",
        "shopee-shop-htx-che",
    ]
    assert {(t.platform, t.kind) for t in config.targets} == {
        ("tiktok", "live"),
        ("tiktok", "hashtag"),
        ("facebook", "live"),
        ("shopee", "shop_dashboard"),
    }
    assert config.targets[0].params == {"account": "shop_vn"}
    assert config.targets[0].interval == 20.0
    assert config.collector.raw_retention == 14 * 86400.0
    assert config.platforms["tiktok"].min_interval == 10.0
    # The shop has not handed over its cookies yet: disabled, so its secret is not required.
    shop = config.targets[-1]
    assert not shop.enabled and shop.secrets == {}


def test_demo_config_loads(tmp_path: Path) -> None:
    text = files("collector").joinpath("demo.toml").read_text(encoding="utf-8")
    path = tmp_path / "demo.toml"
    path.write_text(text.replace("{simulator}", SIMULATOR), encoding="utf-8")
    config = load_config(path, adapters=ADAPTERS, env=demo_env())
    assert config.platforms["tiktok"].base_urls == {
        "web": f"{SIMULATOR}/www.tiktok.com",
        "webcast": f"{SIMULATOR}/webcast.tiktok.com",
        "partner": f"{SIMULATOR}/open-api.tiktokglobalshop.com",
        "auth": f"{SIMULATOR}/auth.tiktok-shops.com",
    }
    [shop] = [t for t in config.targets if t.kind == "shop_lives"]
    assert set(shop.secrets) == {"app_key", "app_secret", "shop_cipher", "refresh_token"}
    assert config.platforms["tiktok"].min_interval == 2.0
    assert {t.platform for t in config.targets} == {"tiktok", "shopee", "facebook", "tiki", "sendo", "lazada"}
    assert {t.interval for t in config.targets} == {5.0, 15.0, 20.0, 30.0}
    # The demo's authorised shop reports on the broadcast its public target watches, for the campaign.
    shop = next(t for t in config.targets if t.kind == "shop_dashboard")
    assert (
        shop.campaign == "mega-livestream-lai-chau-2025"
        and shop.secrets["cookies"].reveal() == demo_env()["COLLECTOR_DEMO_SHOP_COOKIES"]
    )
    assert config.campaigns["mega-livestream-lai-chau-2025"].goals["live_views"] == 800_000


def test_demo_config_without_substitution_is_rejected() -> None:
    text = files("collector").joinpath("demo.toml").read_text(encoding="utf-8")
    found = problems(tomllib.loads(text), demo_env())
    assert found == [
        "platforms.facebook.base_urls.web: expected an http(s) URL, got '{simulator}/www.facebook.com'",
        "platforms.lazada.base_urls.web: expected an http(s) URL, got '{simulator}/www.lazada.vn'",
        "platforms.sendo.base_urls.web: expected an http(s) URL, got '{simulator}/www.sendo.vn'",
        "platforms.sendo.base_urls.detail: expected an http(s) URL, got '{simulator}/detail-api.sendo.vn'",
        "platforms.sendo.base_urls.shop: expected an http(s) URL, got '{simulator}/shop-home.sendo.vn'",
        "platforms.shopee.base_urls.live: expected an http(s) URL, got '{simulator}/live.shopee.vn'",
        "platforms.shopee.base_urls.creator: expected an http(s) URL, got '{simulator}/creator.shopee.vn'",
        "platforms.shopee.base_urls.short: expected an http(s) URL, got '{simulator}/vn.shp.ee'",
        "platforms.tiki.base_urls.web: expected an http(s) URL, got '{simulator}/tiki.vn'",
        "platforms.tiki.base_urls.api: expected an http(s) URL, got '{simulator}/api.tiki.vn'",
        "platforms.tiktok.base_urls.web: expected an http(s) URL, got '{simulator}/www.tiktok.com'",
        "platforms.tiktok.base_urls.webcast: expected an http(s) URL, got '{simulator}/webcast.tiktok.com'",
        "platforms.tiktok.base_urls.partner: expected an http(s) URL, got "
        "'{simulator}/open-api.tiktokglobalshop.com'",
        "platforms.tiktok.base_urls.auth: expected an http(s) URL, got '{simulator}/auth.tiktok-shops.com'",
    ]


def test_defaults_when_sections_are_absent() -> None:
    config = build_config({}, adapters=ADAPTERS, source="empty.toml", env={})
    assert config.collector == CollectorSettings()
    assert config.collector.database_url == "sqlite+aiosqlite:///data/collector.db"
    assert config.collector.metrics_listen == HostPort("127.0.0.1", 9108)
    assert config.collector.default_interval == 30.0
    assert config.collector.max_concurrency == 64
    assert config.collector.raw_retention == 14 * 86400.0
    assert config.http == HttpSettings()
    assert config.http.proxy is None
    assert config.platforms["tiktok"].base_urls == {
        "web": "https://www.tiktok.com",
        "webcast": "https://webcast.tiktok.com",
        "partner": "https://open-api.tiktokglobalshop.com",
        "auth": "https://auth.tiktok-shops.com",
    }
    assert config.platforms["tiktok"].min_interval == 10.0
    assert config.targets == ()
    assert config.source == "empty.toml"


# --- describe -------------------------------------------------------------------------------------


def test_describe_redacts_database_password() -> None:
    data = {"collector": {"database_url": "postgresql+asyncpg://u:s3cret@db/x"}}
    rows = dict(describe(build_config(data, adapters=ADAPTERS, source="t", env={})))
    assert rows["collector.database_url"] == "postgresql+asyncpg://u:***@db/x"
    assert not any("s3cret" in key or "s3cret" in value for key, value in rows.items())


def test_describe_redacts_proxy_credentials() -> None:
    data = {"http": {"proxy": "http://bob:hunter2@proxy.local:3128"}}
    rows = list(describe(build_config(data, adapters=ADAPTERS, source="t", env={})))
    assert ("http.proxy", "http://***@proxy.local:3128") in rows
    assert not any("hunter2" in value or "bob" in value for _, value in rows)


def test_describe_rows() -> None:
    data = {"targets": [target(interval="20s", enabled=False)]}
    rows = dict(describe(build_config(data, adapters=ADAPTERS, source="s.toml", env={})))
    assert rows["source"] == "s.toml"
    assert rows["http.proxy"] == "(none)"
    assert rows["collector.raw_retention"] == "14d"
    assert rows["platforms.tiktok.min_interval"] == "10s"
    assert (rows["fleet.enabled"], rows["fleet.lease"]) == ("false", "30s")
    assert rows["targets.a"] == "tiktok live account=shop_vn every 20s (disabled)"


def test_describe_shows_the_scheduled_start() -> None:
    data = {"targets": [target(scheduled_start="2025-09-09T19:00:00+07:00")]}
    rows = dict(describe(build_config(data, adapters=ADAPTERS, source="s.toml", env={})))
    assert (
        rows["targets.a"] == "tiktok live account=shop_vn scheduled_start=2025-09-09T19:00:00+07:00 every 30s"
    )


# --- CLI ------------------------------------------------------------------------------------------

CLEAN_ENV = {DATABASE_URL_ENV: None, "COLLECTOR_CONFIG": None}

BAD_TOML = """\
[collector]
max_concurrency = "64"

[[targets]]
name = "a"
platform = "tiktk"
kind = "live"
account = "x"
"""


def test_cli_check_config_bad(tmp_path: Path) -> None:
    path = tmp_path / "BAD.toml"
    path.write_text(BAD_TOML, encoding="utf-8")
    result = CliRunner().invoke(main, ["check-config", "--config", str(path)], env=CLEAN_ENV)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "config error: collector.max_concurrency: expected int, got str '64'",
        "config error: targets[0].platform: unknown platform 'tiktk' (known: facebook, lazada, sendo, shopee, tiki, tiktok)",
    ]


def test_cli_check_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    result = CliRunner().invoke(main, ["check-config", "-c", str(path)], env=CLEAN_ENV)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"config error: {path}: file not found\n"


def test_cli_check_config_good() -> None:
    result = CliRunner().invoke(main, ["check-config", "--config", str(ROOT / "config.toml")], env=CLEAN_ENV)
    assert result.exit_code == 0, result.output
    assert "config error" not in result.output
    lines = result.stdout.splitlines()
    assert f"source = {ROOT / 'config.toml'}" in lines
    assert "targets.lai-chau-shop = tiktok live account=shop_vn every 20s" in lines
    assert result.stderr.splitlines()[-1] == f"ok: {len(CONFIG_TOML_TARGETS)} targets ({PER_PLATFORM})"


@pytest.mark.integration
def test_cli_check_config_subprocess(tmp_path: Path) -> None:
    """The real process: exit status 2, problems on stderr, nothing on stdout."""
    path = tmp_path / "BAD.toml"
    path.write_text(BAD_TOML, encoding="utf-8")
    command = [sys.executable, "-c", "from collector.cli import main; main()", "check-config"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    bad = subprocess.run(
        [*command, "--config", str(path)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.splitlines() == [
        "config error: collector.max_concurrency: expected int, got str '64'",
        "config error: targets[0].platform: unknown platform 'tiktk' (known: facebook, lazada, sendo, shopee, tiki, tiktok)",
    ]
    good = subprocess.run(
        [*command, "--config", str(ROOT / "config.toml")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert good.returncode == 0, good.stderr
    assert f"ok: {len(CONFIG_TOML_TARGETS)} targets ({PER_PLATFORM})" in good.stderr


def test_scheduled_start_takes_an_offset_date_time() -> None:
    from datetime import datetime, timedelta, timezone

    config = build_config(
        {"targets": [target(scheduled_start="2025-09-09T19:00:00+07:00")]}, adapters=ADAPTERS, source="t"
    )
    expected = datetime(2025, 9, 9, 19, tzinfo=timezone(timedelta(hours=7)))
    assert config.targets[0].scheduled_start == expected
    assert (
        build_config({"targets": [target()]}, adapters=ADAPTERS, source="t").targets[0].scheduled_start
        is None
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            "2025-09-09T19:00:00",
            "2025-09-09T19:00:00 has no UTC offset (add e.g. +07:00 or Z)",
        ),
        ("tomorrow", "expected an ISO 8601 time like 2025-09-09T08:00:00+07:00, got 'tomorrow'"),
        (5, "expected a date-time, got int 5"),
    ],
)
def test_scheduled_start_without_offset_or_date_is_refused(value: object, problem: str) -> None:
    assert problems({"targets": [target(scheduled_start=value)]}) == [
        f"targets[0].scheduled_start: {problem}"
    ]


def test_env_metrics_listen_overrides_the_file() -> None:
    data = {"collector": {"metrics_listen": "127.0.0.1:9108"}}
    config = build_config(data, adapters=ADAPTERS, source="t", env={METRICS_LISTEN_ENV: "0.0.0.0:9108"})
    assert config.collector.metrics_listen == HostPort("0.0.0.0", 9108)
    assert problems({}, env={METRICS_LISTEN_ENV: "9108"}) == [
        "COLLECTOR_METRICS_LISTEN (environment): expected \"host:port\", got '9108'"
    ]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (
            {"platform": "shopee", "kind": "live", "session_id": "123", "fetch": "carrier-pigeon"},
            "targets[0].fetch: must be 'browser' or 'http', not 'carrier-pigeon'",
        ),
        (
            {"platform": "shopee", "kind": "live", "session_id": "not a link!"},
            "targets[0].session_id: not a Shopee session id, share URL or short link: 'not a link!'",
        ),
        (
            {
                "platform": "shopee",
                "kind": "shop_dashboard",
                "session_id": "https://vn.shp.ee/x",
                "cookies_env": "C",
            },
            "targets[0].session_id: not a Shopee session id or share URL: 'https://vn.shp.ee/x'",
        ),
        (
            {"platform": "facebook", "kind": "live"},
            "targets[0].video_id: missing (a facebook live target needs video_id, page or both)",
        ),
        (
            {"platform": "facebook", "kind": "live", "video_id": "https://example.com/v/1"},
            "targets[0].video_id: not a Facebook video id or video URL: 'https://example.com/v/1'",
        ),
        (
            {"platform": "tiktok", "kind": "live", "account": "https://example.com/@shop"},
            "targets[0].account: 'https://example.com/@shop' is not a TikTok @handle or profile/live URL",
        ),
        ({"platform": "tiktok", "kind": "hashtag", "tag": " # "}, "targets[0].tag: ' # ' is not a hashtag"),
    ],
)
def test_each_kind_checks_its_own_fields_at_load(fields: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({"targets": [{"name": "t", **fields}]}, adapters=ADAPTERS, source="t", env={"C": "x"})
    assert caught.value.problems == [problem]


def test_a_kind_sets_its_own_default_interval_and_an_explicit_one_wins() -> None:
    data = {
        "collector": {"default_interval": "30s"},
        "targets": [
            target(name="slow", platform="lazada", kind="shop", account=None, shop="ocop-lai-chau"),
            target(
                name="set", platform="lazada", kind="shop", account=None, shop="ocop-lai-chau", interval="2h"
            ),
            target(name="tt"),
        ],
    }
    config = build_config(data, adapters=ADAPTERS, source="test.toml", env={})
    assert [t.interval for t in config.targets] == [3600.0, 7200.0, 30.0]
    assert problems({"targets": [target(platform="lazada", kind="shop", account=None, shop="x y")]}) == [
        "targets[0].shop: not a Lazada storefront slug or shop URL: 'x y'"
    ]


def test_fleet_needs_postgresql_and_a_sane_lease() -> None:
    assert problems({"fleet": {"enabled": True, "lease": "2s"}}) == [
        "fleet.enabled: a fleet needs a PostgreSQL database_url (postgresql+asyncpg://…)",
        "fleet.lease: must be at least 5s (renewed every third of it), got 2s",
    ]
    pg = {"collector": {"database_url": "postgresql+asyncpg://u@localhost/c"}}
    config = build_config(
        {**pg, "fleet": {"enabled": True, "lease": "20s"}}, adapters=ADAPTERS, source="t", env={}
    )
    assert (config.fleet.enabled, config.fleet.lease) == (True, 20.0)
