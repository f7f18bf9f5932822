"""Store on change: a poll's samples that repeat the last stored value of their series stay unwritten.

A series is (target, metric, broadcast). A sample is stored when its value, provenance or currency
differs from the last stored sample of its series, when the series is new (a new broadcast, a restart),
or when it is the series' first poll in a new keep-alive period. The periods are aligned to the Unix
epoch (with the one-minute default: to whole UTC minutes), so every series that is polled within a
minute has a row in it, and every value it took in that minute is stored. That keeps what the reports
read exact: the maximum of each minute (charts), the first value after a window start on a whole minute
and the last value before its end (totals), the last and the highest value of a broadcast. A reader of
an export rebuilds the polled series as a step function: each value holds until the next row.

Gap detection (`backfill gaps`) reads the times a target has samples at, and calls a stretch of three
intervals without one a gap; so a target's poll may store nothing only if its previous poll stored
something: a quiet poll keeps its first sample instead.

Applied between the poller and the writer: the live `/metrics` state sees every value first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from collector.api import PollRecord
from schemas.types import Metric, Provenance

Sink = Callable[[PollRecord], None]
# What the last stored sample of a series said, and the keep-alive period it fell in: a plain tuple,
# compared whole, because this runs for every sample the collector takes.
Stored = tuple[float, Provenance, str | None, int]


@dataclass(slots=True)
class _Target:
    session_key: str | None = None
    series: dict[Metric, Stored] = field(default_factory=dict)  # within `session_key`
    stored_last_poll: bool = False  # a target's first poll stores (its series are all new)


class ChangeFilter:
    """Hands each record on with only the samples worth storing; keeps one state per target, for its
    current broadcast only (a new broadcast starts new series), so memory stays bounded."""

    def __init__(
        self, keep_unchanged_every: float, sink: Sink, on_left_out: Callable[[int], None] = lambda _n: None
    ) -> None:
        self.keep_unchanged_every = keep_unchanged_every  # 0: off, every sample is stored
        self.sink, self.on_left_out = sink, on_left_out
        self._targets: dict[str, _Target] = {}

    def __call__(self, record: PollRecord) -> None:
        self.sink(self.admit(record))

    def forget(self, targets: Iterable[str]) -> None:
        """Targets this process stops polling (removed or changed by a reload; in a fleet, taken by
        another replica): what was stored for them meanwhile is not known here, so if they come back
        their series start afresh."""
        for name in targets:
            self._targets.pop(name, None)

    def admit(self, record: PollRecord) -> PollRecord:
        """`record` itself when every sample is to be stored, else a copy with fewer samples."""
        if self.keep_unchanged_every <= 0:
            return record
        state = self._targets.setdefault(record.target, _Target())
        if not record.samples:  # a failed poll: the next one must store for the gaps to stay true
            state.stored_last_poll = False
            return record
        # A poll stamps its samples with its own time, so one period serves them all.
        period = int(record.observed_at.timestamp() // self.keep_unchanged_every)
        series, kept = state.series, []
        for sample in record.samples:
            if sample.session_key != state.session_key:
                state.session_key = sample.session_key
                series = state.series = {}
            said = (sample.value, sample.provenance, sample.currency, period)
            if series.get(sample.metric) != said:
                series[sample.metric] = said
                kept.append(sample)
        if not kept and not state.stored_last_poll:
            first = record.samples[0]
            series[first.metric] = (first.value, first.provenance, first.currency, period)
            kept = [first]
        state.stored_last_poll = bool(kept)
        if len(kept) == len(record.samples):
            return record
        self.on_left_out(len(record.samples) - len(kept))
        return replace(record, samples=kept)
