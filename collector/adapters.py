"""The name -> adapter registry.

The core loads adapters from the `livestream_collector.adapters` entry-point group and never imports a
platform module by name; the adapter protocol itself lives in `collector.api`.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from collector.api import Adapter, KindSpec, TargetConfig

ENTRY_POINT_GROUP = "livestream_collector.adapters"


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


def kind_spec(target: TargetConfig) -> KindSpec:
    return get_adapter(target.platform).kinds[target.kind]


def target_uses_browser(target: TargetConfig) -> bool:
    return kind_spec(target).needs_browser(target.params)
