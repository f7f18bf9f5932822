"""Typed configuration, validated once at the edge.

Every problem is reported with the key path that caused it (`targets[2].platform: unknown platform
"tiktk" (known: tiktok)`), all problems at once, before anything starts.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from collector.api import Adapter, KindSpec, TargetConfig
from collector.secrets import Secret, read_secret

DATABASE_URL_ENV = "COLLECTOR_DATABASE_URL"
# Containers listen on all interfaces; the same config.toml keeps loopback everywhere else.
METRICS_LISTEN_ENV = "COLLECTOR_METRICS_LISTEN"
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TARGET_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_TARGET_COMMON_KEYS = (
    "name",
    "platform",
    "kind",
    "interval",
    "campaign",
    "enabled",
    "keep_every_body",
    "scheduled_start",
)

T = TypeVar("T")


class ConfigError(Exception):
    """One or more configuration problems, each naming its key path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_duration(text: str) -> float:
    """`500ms`, `20s`, `5m`, `1h30m`, `14d` -> seconds."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f'expected a duration string like "30s", got {text!r}')
    compact = text.replace(" ", "")
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(compact):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(compact):
        raise ValueError(f'bad duration {text!r} (use e.g. "500ms", "20s", "5m", "1h", "14d")')
    return total


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms"


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class CollectorSettings:
    database_url: str = "sqlite+aiosqlite:///data/collector.db"
    metrics_listen: HostPort = HostPort("127.0.0.1", 9108)
    default_interval: float = 30.0
    max_concurrency: int = 64
    jitter: float = 0.1
    shutdown_grace: float = 10.0
    flush_interval: float = 1.0
    batch_size: int = 500
    snapshot_success_every: int = 50
    raw_retention: float = 14 * 86400.0
    sample_retention: float | None = None  # None keeps every sample; else whole days past it are dropped
    # An unchanged value is stored again once per this period (0: every value is stored); see
    # collector.change_filter for why a minute.
    keep_unchanged_every: float = 60.0
    pending_limit: int = 200_000
    max_backoff: float = 600.0
    spool_dir: str = "data/spool"
    spool_max_bytes: int = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class HttpSettings:
    timeout: float = 15.0
    user_agent: str = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36"
    )
    headers: Mapping[str, str] = field(default_factory=lambda: {"Accept-Language": "vi-VN,vi;q=0.9,en;q=0.8"})
    proxy: str | None = None
    retries: int = 2  # extra attempts per request for timeouts, resets and 5xx
    retry_backoff: float = 0.5  # first retry wait; doubles, with jitter
    max_redirects: int = 5


@dataclass(frozen=True, slots=True)
class PlatformSettings:
    name: str
    base_urls: Mapping[str, str]
    min_interval: float = 10.0
    requests_per_second: float = 2.0  # per host of the platform, every poller and backfill together
    max_concurrency: int = 8  # requests in flight per host of the platform
    breaker_failures: int = 10  # consecutive failures across targets that open the circuit
    breaker_reset: float = 60.0  # how long an open circuit waits before a half-open probe
    proxies: tuple[Secret, ...] = ()  # rotated when the platform bans or rate-limits


@dataclass(frozen=True, slots=True)
class BrowserSettings:
    executable_path: str | None = None  # None: find chromium on PATH when a target needs it
    max_pages: int = 4
    recycle_after: int = 100
    navigation_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """Several `collector run` processes sharing one PostgreSQL database and one set of targets."""

    enabled: bool = False
    # How long a claim on a target holds without renewal: the most a dead replica's targets wait.
    lease: float = 30.0


@dataclass(frozen=True, slots=True)
class Config:
    collector: CollectorSettings
    http: HttpSettings
    platforms: Mapping[str, PlatformSettings]
    targets: tuple[TargetConfig, ...]
    source: str = "<defaults>"
    browser: BrowserSettings = BrowserSettings()
    campaigns: Mapping[str, CampaignConfig] = field(default_factory=dict)
    fleet: FleetSettings = FleetSettings()

    def active_targets(self) -> list[TargetConfig]:
        return [t for t in self.targets if t.enabled]


class _Reader:
    """Reads one TOML table, remembering the key path and every problem found."""

    def __init__(self, data: Mapping[str, Any], path: str, problems: list[str]) -> None:
        self.data, self.path, self.problems = data, path, problems
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def problem(self, name: str, message: str) -> None:
        self.problems.append(f"{self.key(name)}: {message}")

    def get(self, name: str, kind: type[T], default: T) -> T:
        self.seen.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        # TOML writes `jitter = 0` as an integer; a whole number is a fine float.
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)  # type: ignore[return-value]
        # bool is an int subclass; a counter set to `true` is a mistake worth naming.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problem(name, f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
            return default
        return value

    def convert(self, name: str, default: T, convert: Callable[[Any], T]) -> T:
        self.seen.add(name)
        if name not in self.data:
            return default
        try:
            return convert(self.data[name])
        except (ValueError, TypeError) as exc:
            self.problem(name, str(exc))
            return default

    def table(self, name: str) -> _Reader:
        self.seen.add(name)
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            self.problem(name, f"expected a table, got {type(value).__name__}")
            value = {}
        return _Reader(value, self.key(name), self.problems)

    def reject_unknown(self, allowed: tuple[str, ...] | None = None, hint: str = "") -> None:
        known = set(allowed) if allowed is not None else self.seen
        for name in self.data:
            if name not in known:
                expected = ", ".join(sorted(known)) or "none"
                self.problem(name, f"unknown key{hint} (expected one of: {expected})")


def _positive(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be greater than zero, got {value!r}")
    return seconds


def _duration_or_off(value: Any) -> float:
    """A duration, or `"off"` / `0` for none."""
    if value == "off" or (isinstance(value, int) and not isinstance(value, bool) and value == 0):
        return 0.0
    return parse_duration(value)


def _host_port(value: Any) -> HostPort:
    if not isinstance(value, str) or ":" not in value:
        raise ValueError(f'expected "host:port", got {value!r}')
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"bad port in {value!r}")
    return HostPort(host.strip("[]"), int(port))


def _database_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError('not a database URL (e.g. "sqlite+aiosqlite:///data/collector.db")') from None
    if url.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise ValueError(
            f"unsupported driver {url.drivername!r} (use sqlite+aiosqlite or postgresql+asyncpg)"
        )
    return value


def _read_collector(root: _Reader, env: Mapping[str, str]) -> CollectorSettings:
    r = root.table("collector")
    d = CollectorSettings()
    settings = CollectorSettings(
        database_url=r.convert("database_url", d.database_url, _database_url),
        metrics_listen=r.convert("metrics_listen", d.metrics_listen, _host_port),
        default_interval=r.convert("default_interval", d.default_interval, _positive),
        max_concurrency=r.get("max_concurrency", int, d.max_concurrency),
        jitter=float(r.get("jitter", float, d.jitter)),
        shutdown_grace=r.convert("shutdown_grace", d.shutdown_grace, _positive),
        flush_interval=r.convert("flush_interval", d.flush_interval, _positive),
        batch_size=r.get("batch_size", int, d.batch_size),
        snapshot_success_every=r.get("snapshot_success_every", int, d.snapshot_success_every),
        raw_retention=r.convert("raw_retention", d.raw_retention, _positive),
        sample_retention=r.convert("sample_retention", d.sample_retention, _positive),
        keep_unchanged_every=r.convert("keep_unchanged_every", d.keep_unchanged_every, _duration_or_off),
        pending_limit=r.get("pending_limit", int, d.pending_limit),
        max_backoff=r.convert("max_backoff", d.max_backoff, _positive),
        spool_dir=r.get("spool_dir", str, d.spool_dir),
        spool_max_bytes=r.get("spool_max_bytes", int, d.spool_max_bytes),
    )
    r.reject_unknown()
    for name in ("max_concurrency", "batch_size", "pending_limit", "spool_max_bytes"):
        if getattr(settings, name) < 1:
            r.problem(name, "must be at least 1")
    if not 0 <= settings.jitter < 1:
        r.problem("jitter", "must be in [0, 1)")
    if env.get(DATABASE_URL_ENV):
        try:
            settings = replace(settings, database_url=_database_url(env[DATABASE_URL_ENV]))
        except ValueError as exc:
            root.problems.append(f"{DATABASE_URL_ENV} (environment): {exc}")
    if env.get(METRICS_LISTEN_ENV):
        try:
            settings = replace(settings, metrics_listen=_host_port(env[METRICS_LISTEN_ENV]))
        except ValueError as exc:
            root.problems.append(f"{METRICS_LISTEN_ENV} (environment): {exc}")
    return settings


def _read_http(root: _Reader) -> HttpSettings:
    r = root.table("http")
    d = HttpSettings()
    headers = r.get("headers", dict, dict(d.headers))
    for name, value in headers.items():
        if not isinstance(value, str):
            r.problem(f"headers.{name}", f"expected str, got {type(value).__name__}")
    settings = HttpSettings(
        timeout=r.convert("timeout", d.timeout, _positive),
        user_agent=r.get("user_agent", str, d.user_agent),
        headers=headers,
        proxy=r.get("proxy", str, "") or None,
        retries=r.get("retries", int, d.retries),
        retry_backoff=r.convert("retry_backoff", d.retry_backoff, _positive),
        max_redirects=r.get("max_redirects", int, d.max_redirects),
    )
    r.reject_unknown()
    if settings.retries < 0:
        r.problem("retries", "must be 0 or more")
    return settings


def _read_fleet(root: _Reader, collector: CollectorSettings) -> FleetSettings:
    r = root.table("fleet")
    d = FleetSettings()
    settings = FleetSettings(
        enabled=r.get("enabled", bool, d.enabled),
        lease=r.convert("lease", d.lease, _positive),
    )
    r.reject_unknown()
    if settings.enabled and not collector.database_url.startswith("postgresql+"):
        # Leases and the shared politeness budget live in PostgreSQL; SQLite serves one process.
        r.problem("enabled", "a fleet needs a PostgreSQL database_url (postgresql+asyncpg://…)")
    if settings.lease < 5:
        r.problem("lease", f"must be at least 5s (renewed every third of it), got {settings.lease:g}s")
    return settings


def _read_browser(root: _Reader) -> BrowserSettings:
    r = root.table("browser")
    d = BrowserSettings()
    settings = BrowserSettings(
        executable_path=r.get("executable_path", str, "") or None,
        max_pages=r.get("max_pages", int, d.max_pages),
        recycle_after=r.get("recycle_after", int, d.recycle_after),
        navigation_timeout=r.convert("navigation_timeout", d.navigation_timeout, _positive),
    )
    r.reject_unknown()
    for name in ("max_pages", "recycle_after"):
        if getattr(settings, name) < 1:
            r.problem(name, "must be at least 1")
    if settings.executable_path and not Path(settings.executable_path).is_file():
        r.problem("executable_path", f"no such file {settings.executable_path!r}")
    return settings


def _read_proxies(r: _Reader, env: Mapping[str, str]) -> tuple[Secret, ...]:
    env_name, file_path = r.get("proxies_env", str, ""), r.get("proxies_file", str, "")
    if not env_name and not file_path:
        return ()
    try:
        listing = read_secret(env_name=env_name, file_path=file_path, env=env)
    except ValueError as exc:
        r.problem("proxies_env" if env_name else "proxies_file", str(exc))
        return ()
    urls = [u.strip() for u in re.split(r"[\s,]+", listing.reveal()) if u.strip()]
    bad = [i for i, u in enumerate(urls) if not re.match(r"^(https?|socks5)://", u)]
    if bad:
        # Name the position only: the entry itself may carry credentials.
        r.problem("proxies_env" if env_name else "proxies_file", f"entry {bad[0] + 1} is not a proxy URL")
    return tuple(Secret(u, f"{listing.source} #{i + 1}") for i, u in enumerate(urls))


def _read_platforms(
    root: _Reader, env: Mapping[str, str], adapters: Mapping[str, Adapter]
) -> dict[str, PlatformSettings]:
    table = root.table("platforms")
    platforms: dict[str, PlatformSettings] = {}
    for name in table.data:
        if name not in adapters:
            table.problem(name, f"unknown platform {name!r} (known: {', '.join(adapters)})")
    for name, adapter in adapters.items():
        r = table.table(name)
        urls = r.table("base_urls")
        base_urls = dict(adapter.default_base_urls)
        for key in adapter.default_base_urls:
            base_urls[key] = urls.convert(key, base_urls[key], _base_url).rstrip("/")
        urls.reject_unknown(tuple(adapter.default_base_urls), f" for platform {name}")
        d = PlatformSettings(name, base_urls)
        platforms[name] = PlatformSettings(
            name=name,
            base_urls=base_urls,
            min_interval=r.convert("min_interval", d.min_interval, _positive),
            requests_per_second=r.get("requests_per_second", float, d.requests_per_second),
            max_concurrency=r.get("max_concurrency", int, d.max_concurrency),
            breaker_failures=r.get("breaker_failures", int, d.breaker_failures),
            breaker_reset=r.convert("breaker_reset", d.breaker_reset, _positive),
            proxies=_read_proxies(r, env),
        )
        r.reject_unknown()
        for key in ("requests_per_second", "max_concurrency", "breaker_failures"):
            if getattr(platforms[name], key) <= 0:
                r.problem(key, "must be greater than zero")
    return platforms


def _base_url(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"expected an http(s) URL, got {value!r}")
    return value


def _read_secrets(r: _Reader, spec: KindSpec, env: Mapping[str, str], what: str) -> dict[str, Secret]:
    secrets: dict[str, Secret] = {}
    for name in (*spec.required_secrets, *spec.optional_secrets):
        env_name = r.get(f"{name}_env", str, "")
        file_path = r.get(f"{name}_file", str, "")
        if not env_name and not file_path:
            if name in spec.required_secrets:
                r.problem(f"{name}_env", f"missing (required for {what} targets; or give {name}_file)")
            continue
        try:
            secrets[name] = read_secret(env_name=env_name, file_path=file_path, env=env)
        except ValueError as exc:
            r.problem(f"{name}_env" if env_name else f"{name}_file", str(exc))
    return secrets


def _secret_keys(spec: KindSpec) -> tuple[str, ...]:
    names = (*spec.required_secrets, *spec.optional_secrets)
    return tuple(f"{n}_{form}" for n in names for form in ("env", "file"))


def _read_targets(
    root: _Reader,
    collector: CollectorSettings,
    platforms: Mapping[str, PlatformSettings],
    env: Mapping[str, str],
    adapters: Mapping[str, Adapter],
) -> tuple[TargetConfig, ...]:
    root.seen.add("targets")
    raw = root.data.get("targets", [])
    if not isinstance(raw, list):
        root.problem("targets", "expected an array of tables ([[targets]])")
        return ()
    targets: list[TargetConfig] = []
    names: dict[str, int] = {}
    for index, item in enumerate(raw):
        path = f"targets[{index}]"
        if not isinstance(item, dict):
            root.problems.append(f"{path}: expected a table")
            continue
        r = _Reader(item, path, root.problems)
        name = r.get("name", str, "")
        if not name:
            r.problem("name", "missing (every target needs a unique name)")
        elif not _TARGET_NAME.fullmatch(name):
            r.problem("name", f"{name!r} must be lower-case letters, digits, '.', '_' or '-'")
        elif name in names:
            r.problem("name", f"duplicate target name {name!r} (also targets[{names[name]}])")
        else:
            names[name] = index
        platform = r.get("platform", str, "")
        kind = r.get("kind", str, "")
        interval: float | None = r.convert("interval", None, _positive)
        campaign = r.get("campaign", str, "") or None
        enabled = r.get("enabled", bool, True)
        keep_every_body = r.get("keep_every_body", bool, False)
        scheduled_start = r.convert("scheduled_start", None, _instant)
        adapter = adapters.get(platform)
        if adapter is None:
            r.problem("platform", f"unknown platform {platform!r} (known: {', '.join(adapters)})")
            continue
        spec = adapter.kinds.get(kind)
        if spec is None:
            r.problem("kind", f"unknown kind {kind!r} for {platform} (known: {', '.join(adapter.kinds)})")
            continue
        params: dict[str, str] = {}
        for field_name in (*spec.required, *spec.optional):
            value = r.get(field_name, str, "")
            if value:
                params[field_name] = value
            elif field_name in spec.required:
                r.problem(field_name, f"missing (required for {platform} {kind} targets)")
        for problem in spec.check(params):
            r.problem(problem.field, problem.problem)
        # A disabled target may name secrets that are not handed over yet.
        secrets = _read_secrets(r, spec, env, f"{platform} {kind}") if enabled else {}
        allowed = (*_TARGET_COMMON_KEYS, *spec.required, *spec.optional, *_secret_keys(spec))
        r.reject_unknown(allowed, f" for {platform} {kind}")
        if interval is None:
            interval = spec.default_interval or collector.default_interval
        floor = platforms[platform].min_interval
        if interval < floor:
            r.problem(
                "interval",
                f"{format_duration(interval)} is faster than platforms.{platform}.min_interval "
                f"{format_duration(floor)}",
            )
        targets.append(
            TargetConfig(
                name,
                platform,
                kind,
                interval,
                params,
                campaign,
                enabled,
                secrets,
                keep_every_body,
                scheduled_start,
            )
        )
    return tuple(targets)


# --- campaigns ------------------------------------------------------------------------------------

CAMPAIGN_GOALS = ("live_views", "peak_concurrent_viewers", "orders", "revenue", "hashtag_views", "sessions")


@dataclass(frozen=True, slots=True)
class CampaignConfig:
    """A campaign as organisers announce it: a title, a time window and the numbers they aim for."""

    name: str
    title: str
    start: datetime | None = None
    end: datetime | None = None
    goals: Mapping[str, float] = field(default_factory=dict)


def _instant(value: Any) -> datetime:
    """A TOML offset date-time or an ISO 8601 string with a UTC offset."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"expected an ISO 8601 time like 2025-09-09T08:00:00+07:00, got {value!r}"
            ) from None
    if isinstance(value, date) and not isinstance(value, datetime):
        raise ValueError(f"a bare date is ambiguous; give a time with an offset, e.g. {value}T00:00:00+07:00")
    if not isinstance(value, datetime):
        raise ValueError(f"expected a date-time, got {type(value).__name__} {value!r}")
    if value.tzinfo is None:
        raise ValueError(f"{value.isoformat()} has no UTC offset (add e.g. +07:00 or Z)")
    return value


def _read_campaigns(root: _Reader) -> dict[str, CampaignConfig]:
    table = root.table("campaigns")
    campaigns: dict[str, CampaignConfig] = {}
    for name in table.data:
        r = table.table(name)
        if not _TARGET_NAME.fullmatch(name):
            table.problem(name, f"campaign name {name!r} must be lower-case letters, digits, '.', '_' or '-'")
        title = r.get("title", str, "") or name
        start = r.convert("start", None, _instant)
        end = r.convert("end", None, _instant)
        goals_table = r.table("goals")
        goals: dict[str, float] = {}
        for goal in CAMPAIGN_GOALS:
            value = goals_table.get(goal, float, 0.0)
            if value < 0:
                goals_table.problem(goal, "must be 0 or more")
            elif value:
                goals[goal] = value
        goals_table.reject_unknown(CAMPAIGN_GOALS)
        r.reject_unknown()
        if start is not None and end is not None and end <= start:
            r.problem("end", f"{end.isoformat()} is not after start {start.isoformat()}")
        campaigns[name] = CampaignConfig(name, title, start, end, goals)
    return campaigns


def build_config(
    data: Mapping[str, Any],
    *,
    source: str,
    adapters: Mapping[str, Adapter],
    env: Mapping[str, str] | None = None,
) -> Config:
    """Validate a parsed TOML document against the installed adapters; raises ConfigError listing
    every problem."""
    problems: list[str] = []
    env = os.environ if env is None else env
    root = _Reader(data, "", problems)
    collector = _read_collector(root, env)
    http = _read_http(root)
    browser = _read_browser(root)
    fleet = _read_fleet(root, collector)
    platforms = _read_platforms(root, env, adapters)
    targets = _read_targets(root, collector, platforms, env, adapters)
    campaigns = _read_campaigns(root)
    root.reject_unknown()
    if problems:
        raise ConfigError(problems)
    return Config(collector, http, platforms, targets, source, browser, campaigns, fleet)


def load_config(
    path: str | Path, *, adapters: Mapping[str, Adapter], env: Mapping[str, str] | None = None
) -> Config:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not valid TOML: not UTF-8 text"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    return build_config(data, source=str(path), adapters=adapters, env=env)
