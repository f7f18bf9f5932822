"""Per-target self-metric families kept as ready exposition lines.

prometheus-client formats every sample of every family on each scrape; for the families with a series
per target (tens of thousands at event scale) that took a quarter of a second per scrape. A
`ReadyFamily` formats a series' line when its value changes, so a scrape only joins strings. It offers
the part of prometheus-client's API the collector uses (`labels(...).set/inc`, `remove`) and `collect`,
so a registry still reads it (tests, docs checks), but the `/metrics` page never goes through that path.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.utils import floatToGoString


def label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_set(**labels: str) -> str:
    # Sorted by name, as prometheus-client writes them: a series reads the same whichever path wrote it.
    return ",".join(f'{name}="{label_value(labels[name])}"' for name in sorted(labels))


class ReadyFamily:
    """A gauge or counter (`kind`) by `labelnames`. As in prometheus-client, a counter family is named
    without `_total` (a given `_total` is taken off) and its samples with it."""

    def __init__(
        self, name: str, documentation: str, labelnames: tuple[str, ...], kind: str = "gauge"
    ) -> None:
        if kind not in ("gauge", "counter"):
            raise ValueError(f"kind must be gauge or counter, not {kind!r}")
        if kind == "counter":
            name = name.removesuffix("_total")
        self.name, self.documentation, self.labelnames, self.kind = name, documentation, labelnames, kind
        self._sample_name = f"{name}_total" if kind == "counter" else name
        self._children: dict[tuple[str, ...], _Child] = {}
        text_name = self._sample_name
        self._headers = (
            f"# HELP {text_name} {documentation}\n# TYPE {text_name} {kind}\n".encode(),
            f"# HELP {name} {documentation}\n# TYPE {name} {kind}\n".encode(),  # OpenMetrics: the bare name
        )

    def labels(self, *values: str) -> _Child:
        child = self._children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values!r}")
            labels = dict(zip(self.labelnames, values, strict=True))
            child = self._children[values] = _Child(f"{self._sample_name}{{{label_set(**labels)}}} ")
        return child

    def remove(self, *values: str) -> None:
        del self._children[values]  # KeyError when absent, as prometheus-client's

    def lines(self, openmetrics: bool = False) -> list[bytes]:
        """The family's exposition, a line each, to join with the rest of the page."""
        if not self._children:
            return []
        return [self._headers[openmetrics], *(child.line for child in self._children.values())]

    def collect(self) -> Iterator[Metric]:
        family_type = CounterMetricFamily if self.kind == "counter" else GaugeMetricFamily
        family = family_type(self.name, self.documentation, labels=self.labelnames)
        for values, child in self._children.items():
            family.add_metric(list(values), child.value)
        yield family


class _Child:
    __slots__ = ("line", "prefix", "value")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.value = 0.0
        self.line = f"{prefix}0.0\n".encode()

    def set(self, value: float) -> None:
        value = float(value)
        if value != self.value:  # most sets repeat the value (a healthy target's backoff of 0)
            self.value = value
            self.line = f"{self.prefix}{floatToGoString(value)}\n".encode()

    def inc(self, amount: float = 1.0) -> None:
        self.set(self.value + amount)
