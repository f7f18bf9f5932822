"""The adapter protocol and the name -> adapter registry.

An adapter is one platform: the page kinds it knows, the base URLs it needs, and `poll`, which fetches
through the core's HTTP client and hands bodies to pure parse functions. The core loads adapters from
the `livestream_collector.adapters` entry-point group and never imports a platform module by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from collector.outcomes import Outcome
from schemas.types import ParseResult

if TYPE_CHECKING:
    from collector.browser import BrowserFetcher
    from collector.config import TargetConfig
    from collector.http import HttpFetcher

ENTRY_POINT_GROUP = "livestream_collector.adapters"


@dataclass(frozen=True, slots=True)
class KindSpec:
    """The target fields one page kind takes."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    # Secrets are given as `<name>_env` or `<name>_file` in the target table, never inline.
    required_secrets: tuple[str, ...] = ()
    optional_secrets: tuple[str, ...] = ()
    # True, or a predicate over the target's fields for kinds where the browser is optional.
    uses_browser: bool | Callable[[Mapping[str, str]], bool] = False
    summary: str = ""


@dataclass(slots=True)
class PollResult:
    """A poll that reached the platform and understood its answer."""

    outcome: Outcome
    parsed: ParseResult


@dataclass(slots=True)
class PollContext:
    """Everything one poll may use; `memory` survives between polls of the same target."""

    target: TargetConfig
    base_urls: Mapping[str, str]
    http: HttpFetcher
    browser: BrowserFetcher | None = None
    memory: dict[str, Any] = field(default_factory=dict)


class Adapter(Protocol):
    name: str
    kinds: Mapping[str, KindSpec]
    default_base_urls: Mapping[str, str]

    async def poll(self, ctx: PollContext) -> PollResult: ...


def target_uses_browser(target: TargetConfig) -> bool:
    spec = get_adapter(target.platform).kinds[target.kind]
    return spec.uses_browser(target.params) if callable(spec.uses_browser) else spec.uses_browser


class UnknownPlatform(LookupError):
    pass


class AdapterLoadError(RuntimeError):
    """An installed adapter that cannot be imported: a startup error, never a silent gap."""


@cache
def registered_adapters() -> dict[str, Adapter]:
    """Every installed adapter by platform name."""
    found: dict[str, Adapter] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            adapter = ep.load()
        except Exception as exc:
            raise AdapterLoadError(
                f"platform adapter {ep.name!r} ({ep.value}) failed to load: {exc!r}"
            ) from exc
        found[adapter.name] = adapter
    return dict(sorted(found.items()))


def get_adapter(platform: str) -> Adapter:
    adapters = registered_adapters()
    try:
        return adapters[platform]
    except KeyError:
        raise UnknownPlatform(platform) from None
