"""The effective configuration as an operator reads it (`collector check-config`), secrets redacted."""

from __future__ import annotations

import re
from collections.abc import Iterator

from sqlalchemy.engine import make_url

from collector.config import Config, format_duration


def redacted_database_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def redacted_proxy(proxy: str | None) -> str | None:
    if not proxy:
        return proxy
    return re.sub(r"//[^@/]*@", "//***@", proxy)


def describe(config: Config) -> Iterator[tuple[str, str]]:
    """The effective configuration as (key, value) rows, secrets redacted."""
    c = config.collector
    yield "source", config.source
    yield "collector.database_url", redacted_database_url(c.database_url)
    yield "collector.metrics_listen", str(c.metrics_listen)
    yield "collector.default_interval", format_duration(c.default_interval)
    yield "collector.max_concurrency", str(c.max_concurrency)
    yield "collector.jitter", str(c.jitter)
    yield "collector.shutdown_grace", format_duration(c.shutdown_grace)
    yield "collector.flush_interval", format_duration(c.flush_interval)
    yield "collector.batch_size", str(c.batch_size)
    yield "collector.snapshot_success_every", str(c.snapshot_success_every)
    yield "collector.raw_retention", format_duration(c.raw_retention)
    yield "collector.pending_limit", str(c.pending_limit)
    yield "collector.max_backoff", format_duration(c.max_backoff)
    yield "collector.spool_dir", c.spool_dir
    yield "collector.spool_max_bytes", str(c.spool_max_bytes)
    yield "fleet.enabled", "true" if config.fleet.enabled else "false"
    yield "fleet.lease", format_duration(config.fleet.lease)
    yield "http.timeout", format_duration(config.http.timeout)
    yield "http.user_agent", config.http.user_agent
    for name, value in config.http.headers.items():
        yield f"http.headers.{name}", value
    yield "http.proxy", redacted_proxy(config.http.proxy) or "(none)"
    yield "http.retries", str(config.http.retries)
    yield "http.retry_backoff", format_duration(config.http.retry_backoff)
    yield "http.max_redirects", str(config.http.max_redirects)
    b = config.browser
    yield "browser.executable_path", b.executable_path or "(chromium on PATH)"
    yield "browser.max_pages", str(b.max_pages)
    yield "browser.recycle_after", str(b.recycle_after)
    yield "browser.navigation_timeout", format_duration(b.navigation_timeout)
    for name, platform in config.platforms.items():
        for key, url in platform.base_urls.items():
            yield f"platforms.{name}.base_urls.{key}", url
        yield f"platforms.{name}.min_interval", format_duration(platform.min_interval)
        yield f"platforms.{name}.requests_per_second", f"{platform.requests_per_second:g}"
        yield f"platforms.{name}.max_concurrency", str(platform.max_concurrency)
        yield f"platforms.{name}.breaker_failures", str(platform.breaker_failures)
        yield f"platforms.{name}.breaker_reset", format_duration(platform.breaker_reset)
        if platform.proxies:
            yield (
                f"platforms.{name}.proxies",
                f"{len(platform.proxies)} from {platform.proxies[0].source.split(' #')[0]}",
            )
    for t in config.targets:
        fields = " ".join(
            [*(f"{k}={v}" for k, v in t.params.items()), *(f"{k}={v}" for k, v in t.secrets.items())]
        )
        if t.scheduled_start is not None:
            fields += f" scheduled_start={t.scheduled_start.isoformat()}"
        state = "" if t.enabled else " (disabled)"
        yield (
            f"targets.{t.name}",
            f"{t.platform} {t.kind} {fields} every {format_duration(t.interval)}{state}",
        )
