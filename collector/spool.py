"""A durable local write-ahead spool in front of the batched writer.

Every record is appended here before the writer queues it. Each append is one os.write() (no userspace
buffer), so the record is in the page cache and survives kill -9. `sync` fsyncs once per batch, which
covers a machine crash. `ack` marks the records committed to the database. On start, `replay` returns
what was never acknowledged. The database writes are idempotent, so a record replayed twice is harmless.
That is also why the mark is not fsynced: the writer acknowledges only commits the database has made
durable, so a mark that a machine crash sets back (or empties) only replays records the database skips.

Layout: `<first seq, 20 digits>.jsonl` segments holding one `{"seq":…, "record":{…}}` line each, an `ack`
file with the highest acknowledged sequence, and a `lock` file so two processes never share the spool.
A record's samples are arrays of their fields in declaration order (spools written before that hold an
object per sample; both are read).
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import fcntl
import logging
import math
import operator
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson

from collector.api import PollRecord, RawResponse
from collector.outcomes import Outcome
from schemas.types import LiveStatus, Metric, Provenance, Sample, SessionObservation

log = logging.getLogger(__name__)
SUFFIX = ".jsonl"
T = TypeVar("T")


_FIELDS = {cls: tuple(f.name for f in fields(cls)) for cls in (Sample, SessionObservation, RawResponse)}
# A sample as the tuple of its fields: a record's samples were most of the cost of writing its line,
# with orjson reading each field of each sample by name and the names repeated in every line.
_sample_fields = operator.attrgetter(*_FIELDS[Sample])
_VALUE = _FIELDS[Sample].index("value")
_sample_value = operator.attrgetter("value")


def _plain(obj: Any) -> dict[str, Any]:
    """A Sample, SessionObservation or RawResponse as JSON types; `_build` reverses it."""
    return {name: _out(getattr(obj, name)) for name in _FIELDS[type(obj)]}  # fields() is slow


def _out(v: Any) -> Any:
    if v is None or type(v) is str:  # most fields: the fast way out
        return v
    if isinstance(v, datetime):
        return v.isoformat()  # keeps microseconds and the UTC offset
    if isinstance(v, bytes):  # level 1: it runs on the event loop's time; the store recompresses at 6
        return base64.b64encode(zlib.compress(v, 1)).decode("ascii")
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)  # orjson would write nan/inf as null
    return v  # str, int, finite float, None; StrEnum members are str and serialise by value


def _build(cls: type[T], d: dict[str, Any], **convert: Callable[[Any], Any]) -> T:
    # `float` as a converter also reads back the "nan"/"inf" text written by `_out`.
    return cls(**{k: convert[k](v) if k in convert and v is not None else v for k, v in d.items()})


def _sample_dict(row: list[Any]) -> dict[str, Any]:
    # Not strict: a field added to Sample later (with a default) is absent from rows spooled before it.
    return dict(zip(_FIELDS[Sample], row, strict=False))


def encode(r: PollRecord) -> dict[str, Any]:
    """The record as types orjson writes. Datetimes and enums it writes natively (the same text `_plain`
    would give), which spares an object per field; only nan/inf need `_out`'s text."""
    samples = [_sample_fields(s) for s in r.samples]
    if not all(map(math.isfinite, map(_sample_value, r.samples))):
        samples = [(*row[:_VALUE], _out(row[_VALUE]), *row[_VALUE + 1 :]) for row in samples]
    return {
        "target": r.target,
        "observed_at": r.observed_at,
        "outcome": r.outcome,
        "samples": samples,
        "session": r.session,
        "snapshots": [{"response": _plain(raw), "reason": reason} for raw, reason in r.snapshots],
        "next_due_at": r.next_due_at,
        "detail": r.detail,
        "credentials_expire_at": _out(r.credentials_expire_at),
        "state": r.state,
    }


def decode(d: dict[str, Any]) -> PollRecord:
    iso, body = datetime.fromisoformat, lambda text: zlib.decompress(base64.b64decode(text))
    return PollRecord(
        d["target"],
        iso(d["observed_at"]),
        Outcome(d["outcome"]),
        [
            _build(
                Sample,
                _sample_dict(s) if type(s) is list else s,
                metric=Metric,
                value=float,
                observed_at=iso,
                provenance=Provenance,
            )
            for s in d["samples"]
        ],
        None
        if d["session"] is None
        else _build(SessionObservation, d["session"], status=LiveStatus, started_at=iso, ended_at=iso),
        [
            (_build(RawResponse, s["response"], body=body, fetched_at=iso, retry_after=float), s["reason"])
            for s in d["snapshots"]
        ],
        iso(d["next_due_at"]) if d.get("next_due_at") else None,
        d.get("detail"),
        iso(d["credentials_expire_at"]) if d.get("credentials_expire_at") else None,
        d.get("state"),  # absent from records spooled before states were stored
    )


@dataclass(slots=True)
class _Segment:
    first: int  # the sequence number it was created for; records in it are >= first
    path: Path
    size: int


def _fsync_dir(directory: Path) -> None:
    # A created, renamed or deleted file is durable only once its directory entry is.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SpoolInUse(RuntimeError):
    """Another live process holds the spool's lock."""


class Spool:
    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        segment_bytes: int = 4 * 1024 * 1024,
        on_drop: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:  # two writers would interleave sequence numbers; the kernel drops the lock when we die
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise SpoolInUse(f"spool {self.dir} is in use by another process") from None
        self.max_bytes, self.on_drop = max_bytes, on_drop
        # At most half the cap, so dropping old segments can always bring the spool back under it.
        self.segment_bytes = max(1, min(segment_bytes, max_bytes // 2))
        self._acked = 0
        with contextlib.suppress(FileNotFoundError, ValueError):  # a bad mark only means replaying more
            self._acked = int((self.dir / "ack").read_text())
        paths = (p for p in self.dir.glob("*" + SUFFIX) if p.stem.isdigit())
        self._segments = sorted(
            (_Segment(int(p.stem), p, p.stat().st_size) for p in paths), key=lambda s: s.first
        )
        self._fd: int | None = None
        self._dir_dirty = False
        if self._segments:
            self._trim_torn_tail(self._segments[-1])
        self._size = sum(s.size for s in self._segments)
        # Everything <= floor is acknowledged or was dropped by the cap (which leaves no other trace than
        # the first remaining segment's name). `gaps` are the unreadable sequence numbers above the floor.
        self._floor = max(self._acked, self._segments[0].first - 1) if self._segments else self._acked
        self._gaps: list[int] = []
        last = self._floor
        for seq, _ in self._scan(quiet=False):
            self._gaps.extend(range(max(last, self._floor) + 1, seq))
            last = max(last, seq)
        self._next = max(last + 1, self._acked + 1, self._segments[-1].first if self._segments else 1)
        self._gaps.extend(range(max(last, self._floor) + 1, self._next))
        if self._segments:
            # Reuse the last segment; fsync it, as a killed predecessor may have left it in the page cache only.
            self._fd = os.open(self._segments[-1].path, os.O_WRONLY | os.O_APPEND)
            os.fsync(self._fd)

    @property
    def depth(self) -> int:
        return self._next - 1 - self._floor - len(self._gaps)

    @property
    def size_bytes(self) -> int:
        return self._size

    def append(self, record: PollRecord) -> int:
        seq = self._next
        line = orjson.dumps({"seq": seq, "record": encode(record)}, option=orjson.OPT_APPEND_NEWLINE)
        seg = self._current()
        assert self._fd is not None
        try:
            written = 0
            while written < len(line):
                written += os.write(self._fd, line[written:])
        except OSError:  # disk full, say: cut the half line off, or the next record would be glued to it
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, seg.size)
            raise
        seg.size += len(line)
        self._size += len(line)
        self._next += 1
        if self._size > self.max_bytes:
            self._enforce_cap()
        return seq

    def sync(self) -> None:
        # Nothing to flush: appends go straight to the OS with os.write.
        if self._fd is not None:
            os.fsync(self._fd)
        if self._dir_dirty:
            _fsync_dir(self.dir)
            self._dir_dirty = False

    def ack(self, seq: int) -> None:
        if seq >= self._next:
            raise ValueError(f"ack({seq}) is past the last appended record {self._next - 1}")
        if seq <= self._acked:
            return
        tmp = self.dir / "ack.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, b"%d\n" % seq)
        finally:
            os.close(fd)
        # Atomic for a process that dies: the old mark or the new one. Not fsynced (see the module's
        # docstring): two fsyncs per batch on the event loop bought nothing the database does not hold.
        os.replace(tmp, self.dir / "ack")
        self._acked = seq
        self._raise_floor(seq)
        # Acknowledged records are durable in the database, so deleting their segments loses nothing
        # whatever a crash does to the mark. The current segment stays: it is still being appended to.
        while len(self._segments) > 1 and self._segments[1].first - 1 <= seq:
            self._remove(self._segments.pop(0))

    def replay(self, limit: int | None = None) -> list[tuple[int, PollRecord]]:
        """The oldest unacknowledged records, in order; at most `limit` of them."""
        out: list[tuple[int, PollRecord]] = []
        for seq, data in self._scan(quiet=True):
            if limit is not None and len(out) >= limit:
                break
            if seq > self._floor:
                try:
                    out.append((seq, decode(data)))
                except (KeyError, TypeError, ValueError, zlib.error) as exc:
                    log.error("spool record %d cannot be decoded, skipped: %r", seq, exc)
        return out

    def close(self) -> None:
        self.sync()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        os.close(self._lock)  # releases the flock

    def _current(self) -> _Segment:
        seg = self._segments[-1] if self._segments else None
        if seg is not None and seg.size >= self.segment_bytes:
            if self._fd is not None:  # the next sync only covers the new segment: make this one durable now
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None
            seg = None
        if seg is None:
            seg = _Segment(self._next, self.dir / f"{self._next:020d}{SUFFIX}", 0)
            self._segments.append(seg)
            self._fd = os.open(seg.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._dir_dirty = True
        return seg

    def _enforce_cap(self) -> None:
        dropped, first, last = 0, 0, 0
        while self._size > self.max_bytes and len(self._segments) > 1:
            seg, hi = self._segments[0], self._segments[1].first - 1
            lo = max(seg.first, self._floor + 1)
            n = max(0, hi - lo + 1) - (
                bisect.bisect_right(self._gaps, hi) - bisect.bisect_left(self._gaps, lo)
            )
            if n > 0:
                first, last, dropped = first or lo, hi, dropped + n
            self._segments.pop(0)
            self._remove(seg)
            self._raise_floor(hi)
        if dropped:
            msg = "spool over its %d-byte cap: dropped %d records from %d..%d (database down too long)"
            log.error(msg, self.max_bytes, dropped, first, last)
            self.on_drop(dropped)

    def _remove(self, seg: _Segment) -> None:
        seg.path.unlink(missing_ok=True)
        self._size -= seg.size

    def _raise_floor(self, seq: int) -> None:
        self._floor = max(self._floor, seq)
        del self._gaps[: bisect.bisect_right(self._gaps, self._floor)]

    def _trim_torn_tail(self, seg: _Segment) -> None:
        # A last line without its newline was cut by a death mid-write; it was never handed to the writer.
        # Cutting it off lets appends continue in this segment.
        data = seg.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            log.warning("spool %s: torn last line (%d bytes) skipped", seg.path.name, len(data) - keep)
            os.truncate(seg.path, keep)
            seg.size = keep

    def _scan(self, *, quiet: bool) -> Iterator[tuple[int, dict[str, Any]]]:
        """Readable lines of every segment in sequence order; bad or out-of-order ones are skipped."""
        last = 0
        for seg in self._segments:
            for lineno, line in enumerate(seg.path.read_bytes().split(b"\n"), 1):
                if not line:
                    continue
                try:
                    obj = orjson.loads(line)
                    seq, data = obj["seq"], obj["record"]
                    ok = type(seq) is int and seq > last and type(data) is dict
                except (orjson.JSONDecodeError, TypeError, KeyError):
                    ok = False
                if ok:
                    last = seq
                    yield seq, data
                elif not quiet:
                    log.warning(
                        "spool %s line %d: unreadable or out of order, skipped", seg.path.name, lineno
                    )
