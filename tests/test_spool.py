"""The write-ahead spool on real files: round trips, restarts, acks, torn and garbage lines, kill -9, cap."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.api import PollRecord, RawResponse
from collector.outcomes import Outcome
from collector.spool import Spool, _plain, decode, encode
from schemas.types import LiveStatus, Metric, Provenance, Sample, SessionObservation

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2025, 9, 9, 13, 0, 0, 123456, tzinfo=UTC)
BIG = 1 << 30


def make_record(i: int) -> PollRecord:
    """A record using every field: money with currency, a session, and binary snapshot bodies."""
    at = T0 + timedelta(seconds=i, microseconds=i)
    key = f"room-{i // 3}"
    samples = [
        Sample("shop", "tiktok", "live", Metric.VIEWERS, float(100 + i), at, Provenance.OBSERVED, key),
        Sample("shop", "tiktok", "live", Metric.REVENUE, 1234.5 + i / 7, at, Provenance.REPORTED, key, "VND"),
        Sample("shop", "tiktok", "live", Metric.ITEMS_SOLD, 0.1 + 0.2, at, Provenance.ESTIMATED),
    ]
    session = SessionObservation(
        key,
        LiveStatus.LIVE,
        f"Sale 9.9 ✨ #{i}",
        at.astimezone(timezone(timedelta(hours=7))),
        None,
        account=f"shop_{i}",
    )
    body = bytes(range(256)) * 3 + b'\n\x00{"seq": 1}\n' + os.urandom(0) + str(i).encode()
    snapshots = [
        (RawResponse(f"https://example.com/live/{i}?a=1", 200, "text/html; charset=utf-8", body, at), None),
        (RawResponse("https://example.com/api", 429, "", b"", at, retry_after=12.5), "rate:limited"),
    ]
    outcome = Outcome.OK if i % 2 == 0 else Outcome.PARSE_FAILURE
    record = PollRecord(f"shop-{i % 4}", at, outcome, samples, session if i % 5 else None, snapshots)
    record.credentials_expire_at = at + timedelta(hours=4) if i % 2 else None
    return record


def fill(spool: Spool, n: int, start: int = 0) -> list[int]:
    return [spool.append(make_record(i)) for i in range(start, start + n)]


def segments(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.jsonl"))


def test_rich_records_round_trip_exactly_through_the_files(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=BIG)
    records = [make_record(i) for i in range(12)]
    seqs = [spool.append(r) for r in records]
    spool.close()
    assert seqs == list(range(1, 13))
    line = (tmp_path / "spool" / segments(tmp_path / "spool")[0]).read_bytes().splitlines()[0]
    assert set(orjson.loads(line)) == {"seq", "record"}

    spool = Spool(tmp_path / "spool", max_bytes=BIG)
    replayed = spool.replay()
    assert [seq for seq, _ in replayed] == seqs
    assert [r for _, r in replayed] == records
    assert replayed[1][1].snapshots[0][0].body == records[1].snapshots[0][0].body
    assert isinstance(replayed[1][1].snapshots[0], tuple)
    assert replayed[0][1].samples[1].currency == "VND"
    spool.close()


def test_a_restart_replays_exactly_the_unacknowledged_records_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=BIG, segment_bytes=3000)
    seqs = fill(spool, 20)
    spool.sync()
    spool.ack(seqs[6])
    assert spool.depth == 13
    spool.close()

    spool = Spool(tmp_path, max_bytes=BIG, segment_bytes=3000)
    assert spool.depth == 13
    replayed = spool.replay()
    assert [seq for seq, _ in replayed] == seqs[7:]
    assert [r for _, r in replayed] == [make_record(i) for i in range(7, 20)]
    spool.close()


def test_ack_deletes_fully_acknowledged_segments_and_the_mark_survives_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=BIG, segment_bytes=2000)
    fill(spool, 30)
    before = segments(tmp_path)
    assert len(before) >= 4
    firsts = [int(name.split(".")[0]) for name in before]
    spool.ack(firsts[2])  # segment 0 and 1 are wholly acknowledged, segment 2 only its first record
    assert segments(tmp_path) == before[2:]
    assert (tmp_path / "ack").read_text().strip() == str(firsts[2])
    assert not (tmp_path / "ack.tmp").exists()
    size = spool.size_bytes
    assert size == sum(p.stat().st_size for p in tmp_path.glob("*.jsonl"))
    spool.ack(3)  # an older mark changes nothing
    spool.close()

    spool = Spool(tmp_path, max_bytes=BIG, segment_bytes=2000)
    assert [seq for seq, _ in spool.replay()] == list(range(firsts[2] + 1, 31))
    assert spool.depth == 30 - firsts[2]
    assert spool.size_bytes == size
    spool.ack(30)  # everything: only the current segment remains, empty of unacknowledged records
    assert segments(tmp_path) == before[-1:]
    assert spool.depth == 0 and spool.replay() == []
    with pytest.raises(ValueError):
        spool.ack(31)
    spool.close()


def test_sequence_numbers_continue_across_restarts(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=BIG, segment_bytes=1500)
    assert fill(spool, 5) == [1, 2, 3, 4, 5]
    spool.close()
    spool = Spool(tmp_path, max_bytes=BIG, segment_bytes=1500)
    assert fill(spool, 5, 5) == [6, 7, 8, 9, 10]
    spool.ack(10)
    spool.close()
    spool = Spool(tmp_path, max_bytes=BIG, segment_bytes=1500)
    assert spool.depth == 0
    assert spool.append(make_record(10)) == 11
    spool.ack(11)
    spool.close()
    # Even with every segment gone, the ack mark keeps numbers from being reused.
    for p in tmp_path.glob("*.jsonl"):
        p.unlink()
    spool = Spool(tmp_path, max_bytes=BIG)
    assert spool.depth == 0
    assert spool.append(make_record(11)) == 12
    spool.close()


def test_a_torn_last_line_is_skipped_with_a_warning_and_appends_continue(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path, max_bytes=BIG)
    fill(spool, 3)
    spool.close()
    [name] = segments(tmp_path)
    with open(tmp_path / name, "ab") as f:
        f.write(b'{"seq":4,"record":{"target":"sh')  # died in the middle of write()

    with caplog.at_level(logging.WARNING, logger="collector.spool"):
        spool = Spool(tmp_path, max_bytes=BIG)
    assert any("torn last line" in r.getMessage() for r in caplog.records)
    assert [seq for seq, _ in spool.replay()] == [1, 2, 3]
    assert spool.append(make_record(3)) == 4
    spool.close()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="collector.spool"):
        spool = Spool(tmp_path, max_bytes=BIG)
    assert caplog.records == []
    assert [r for _, r in spool.replay()] == [make_record(i) for i in range(4)]
    spool.close()


def test_garbage_in_the_middle_of_a_segment_is_skipped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path, max_bytes=BIG)
    fill(spool, 6)
    spool.close()
    path = tmp_path / segments(tmp_path)[0]
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = b"\x00\x00garbage\xff\n"  # record 3
    lines[4] = b'{"seq": "five", "record": []}\n'  # record 5
    lines.insert(5, b"[1, 2]\n\n")
    path.write_bytes(b"".join(lines))

    with caplog.at_level(logging.WARNING, logger="collector.spool"):
        spool = Spool(tmp_path, max_bytes=BIG)
    bad = [r for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(bad) == 3
    assert [seq for seq, _ in spool.replay()] == [1, 2, 4, 6]
    assert [r for _, r in spool.replay()] == [make_record(i) for i in (0, 1, 3, 5)]
    assert spool.depth == 4
    assert spool.append(make_record(6)) == 7
    spool.ack(7)
    assert spool.depth == 0
    spool.close()


@pytest.mark.integration
def test_records_survive_kill_9_without_sync_or_close(tmp_path: Path) -> None:
    n = 200
    code = (
        "import os, signal\n"
        "from pathlib import Path\n"
        "from collector.spool import Spool\n"
        "from tests.test_spool import make_record\n"
        f"spool = Spool(Path({str(tmp_path)!r}), max_bytes=1 << 30, segment_bytes=20_000)\n"
        f"for i in range({n}):\n"
        "    spool.append(make_record(i))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr.decode()
    assert len(segments(tmp_path)) > 1

    spool = Spool(tmp_path, max_bytes=BIG, segment_bytes=20_000)  # the dead process's lock is gone
    replayed = spool.replay()
    assert [seq for seq, _ in replayed] == list(range(1, n + 1))
    assert [r for _, r in replayed] == [make_record(i) for i in range(n)]
    assert spool.append(make_record(n)) == n + 1
    spool.close()


def test_over_the_cap_the_oldest_segments_are_dropped_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    drops: list[int] = []
    spool = Spool(tmp_path, max_bytes=6000, segment_bytes=2000, on_drop=drops.append)
    with caplog.at_level(logging.ERROR, logger="collector.spool"):
        seqs = fill(spool, 40)
    assert drops and spool.size_bytes <= 6000
    kept = [seq for seq, _ in spool.replay()]
    assert kept == seqs[-len(kept) :]  # the newest records, contiguous
    assert sum(drops) + len(kept) == 40
    assert spool.depth == len(kept)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == len(drops)
    assert (
        errors[0]
        .getMessage()
        .startswith(f"spool over its 6000-byte cap: dropped {drops[0]} records from 1..")
    )
    spool.close()

    spool = Spool(tmp_path, max_bytes=6000, segment_bytes=2000)
    assert [seq for seq, _ in spool.replay()] == kept and spool.depth == len(kept)
    assert spool.append(make_record(40)) == 41
    spool.close()


def test_acknowledged_records_do_not_count_as_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    record, drops = make_record(1), []
    probe = Spool(tmp_path / "probe", max_bytes=BIG)
    probe.append(record)
    line = probe.size_bytes
    probe.close()
    # Four records per segment; the 11th record pushes the spool over the cap (+50: longer seqs).
    spool = Spool(tmp_path / "s", max_bytes=10 * line + 50, segment_bytes=4 * line, on_drop=drops.append)
    for _ in range(3):
        spool.append(record)
    spool.ack(2)
    with caplog.at_level(logging.ERROR, logger="collector.spool"):
        for _ in range(7):
            spool.append(record)
        assert drops == [] and spool.depth == 8
        assert spool.append(record) == 11
    assert drops == [2]  # records 3 and 4: the two acknowledged ones were not lost
    assert "dropped 2 records from 3..4" in caplog.records[0].getMessage()
    assert spool.depth == 7 and [seq for seq, _ in spool.replay()] == list(range(5, 12))
    spool.close()


def test_one_spool_per_directory(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=BIG)
    with pytest.raises(RuntimeError, match="in use"):
        Spool(tmp_path, max_bytes=BIG)
    spool.close()
    Spool(tmp_path, max_bytes=BIG).close()


text = st.text(max_size=12)
moments = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.none()
    | st.just(UTC)
    | st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-23 * 60, 23 * 60)),
)
samples = st.builds(
    Sample,
    target=text,
    platform=text,
    kind=text,
    metric=st.sampled_from(Metric),
    value=st.floats(allow_nan=False),
    observed_at=moments,
    provenance=st.sampled_from(Provenance),
    session_key=st.none() | text,
    currency=st.none() | st.sampled_from(["VND", "USD", "IDR", "THB"]),
)
sessions = st.builds(
    SessionObservation,
    key=text,
    status=st.sampled_from(LiveStatus),
    title=st.none() | text,
    started_at=st.none() | moments,
    ended_at=st.none() | moments,
)
responses = st.builds(
    RawResponse,
    url=text,
    status=st.integers(100, 599),
    content_type=text,
    body=st.binary(max_size=300),
    fetched_at=moments,
    retry_after=st.none() | st.floats(min_value=0, allow_nan=False),
)
records = st.builds(
    PollRecord,
    target=text,
    observed_at=moments,
    outcome=st.sampled_from(Outcome),
    samples=st.lists(samples, max_size=5),
    session=st.none() | sessions,
    snapshots=st.lists(st.tuples(responses, st.none() | text), max_size=2),
    next_due_at=st.none() | moments,
    detail=st.none() | text,
)


@settings(max_examples=300)
@given(records)
def test_any_record_round_trips_exactly(record: PollRecord) -> None:
    assert decode(orjson.loads(orjson.dumps(encode(record)))) == record


@given(st.sampled_from([float("inf"), float("-inf")]))
def test_non_finite_values_round_trip(value: float) -> None:
    record = make_record(1)
    record.samples = [Sample("shop", "tiktok", "live", Metric.VIEWERS, value, T0, Provenance.OBSERVED)]
    assert decode(orjson.loads(orjson.dumps(encode(record)))).samples[0].value == value


@settings(max_examples=50)
@given(records)
def test_records_spooled_with_a_sample_object_each_still_read_back(record: PollRecord) -> None:
    older = encode(record) | {"samples": [_plain(s) for s in record.samples]}  # the layout before arrays
    assert decode(orjson.loads(orjson.dumps(older))) == record
