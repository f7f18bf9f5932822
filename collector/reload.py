"""Targets changed without a restart (`collector reload`, SIGHUP).

The configuration file is read again and validated exactly as at start; a file with any problem is
refused whole and the running configuration stays. Otherwise added targets start, removed ones stop
and leave /metrics, changed ones start over with their new fields, and unchanged ones keep their state
(backoff, live room, sales estimate). Settings outside `[[targets]]` are not applied live: the outcome
names them as needing a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields, replace

from collector.api import Adapter
from collector.config import Config, ConfigError, load_config

log = logging.getLogger(__name__)

LIVE_SECTIONS = ("targets",)


@dataclass(slots=True)
class ReloadOutcome:
    ok: bool
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    restart_needed: list[str] = field(default_factory=list)  # sections changed but not applied live
    problems: list[str] = field(default_factory=list)  # why the new file was refused

    def describe(self) -> str:
        if not self.ok:
            return f"refused, still running the previous configuration: {'; '.join(self.problems)}"
        parts = [f"{len(self.added)} added", f"{len(self.removed)} removed", f"{len(self.changed)} changed",
                 f"{self.unchanged} unchanged"]  # fmt: skip
        names = [f"{sign}{name}" for sign, names in (("+", self.added), ("-", self.removed), ("~", self.changed))
                 for name in names]  # fmt: skip
        text = "applied: " + ", ".join(parts) + (f" ({' '.join(names)})" if names else "")
        if self.restart_needed:
            text += f"; not applied until a restart: {', '.join(self.restart_needed)}"
        return text

    def document(self) -> dict[str, object]:
        return {name.name: getattr(self, name.name) for name in fields(self)} | {"summary": self.describe()}


def compare(old: Config, new: Config) -> ReloadOutcome:
    """What applying `new` over the running `old` would change (pure)."""
    before = {t.name: t for t in old.active_targets()}
    after = {t.name: t for t in new.active_targets()}
    outcome = ReloadOutcome(ok=True)
    outcome.added = sorted(after.keys() - before.keys())
    outcome.removed = sorted(before.keys() - after.keys())
    outcome.changed = sorted(n for n in after.keys() & before.keys() if after[n] != before[n])
    outcome.unchanged = len(after.keys() & before.keys()) - len(outcome.changed)
    outcome.restart_needed = [
        f.name
        for f in fields(old)
        if f.name not in (*LIVE_SECTIONS, "source") and getattr(old, f.name) != getattr(new, f.name)
    ]
    return outcome


class Reloader:
    """Re-reads the service's configuration file and hands the new targets to whoever needs them."""

    def __init__(
        self,
        config: Config,
        adapters: Mapping[str, Adapter],
        apply: Callable[[Config, ReloadOutcome], Awaitable[None]],
    ) -> None:
        self.config, self.adapters, self.apply = config, adapters, apply

    async def reload(self) -> ReloadOutcome:
        if self.config.source.startswith("<"):
            return ReloadOutcome(ok=False, problems=[f"{self.config.source} has no file to read again"])
        try:
            new = load_config(self.config.source, adapters=self.adapters)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload refused: config error: %s", problem)
            return ReloadOutcome(ok=False, problems=exc.problems)
        outcome = compare(self.config, new)
        # Only the targets change live; every other section stays as the service started with it.
        self.config = replace(self.config, targets=new.targets)
        await self.apply(self.config, outcome)
        log.info("configuration reloaded from %s: %s", self.config.source, outcome.describe())
        return outcome
