"""Fleet capacity on this machine: real `collector run` replicas, a real PostgreSQL, the simulator.

Everything runs as it does in production: each replica is a `collector run` subprocess with its own
config and spool, the database is a throwaway PostgreSQL on 127.0.0.1 (a fresh database per run) and
the platform is `collector simulate` in a subprocess. TikTok live targets at a 15 s interval, many
per simulator room (two live accounts). A run starts the replicas, lets them settle (`--warmup`:
migration, claims, the first polls spread over 10 s), then measures for `--window` seconds:

- schedule lag: `collector_schedule_lag_seconds`, how late each poll started after it was due, scraped
  from every replica at both ends of the window; p99 by interpolation in the buckets (as
  `histogram_quantile`), and the share started within 1 s, which says exactly whether p99 <= 1 s;
- polls completed (`collector_polls_total`) and the share that were `ok` (a timeout means the
  simulator or the machine could not keep up);
- CPU of every process (utime + stime from /proc: each replica, PostgreSQL's whole process tree, the
  simulator), as cores busy over the window, and each replica's RSS at the window's end;
- the database's committed transactions (`pg_stat_database.xact_commit`).

Three parts: the ramp (one replica, growing target counts, until p99 lag passes 1 s or polls fall
behind), the fleet (1, 2, 3 replicas on one fixed target count), and the overhead (the lease loop alone
in this process, counting its statements; then one replica with `[fleet] enabled = false` and `true`
in alternating rounds, medians of CPU-seconds per 1000 polls). The machine is shared: its load average
is printed with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy import event

from collector.config import TargetConfig
from collector.fleet import Fleet, Leases
from collector.metrics import LiveState, SelfMetrics
from collector.store import Store
from tests.harness import free_port
from tests.postgres import PostgresServer, plain_dsn

INTERVAL = 15.0
LEASE = 30.0
ACCOUNTS = ("shop_vn", "nongsanlaichau_official")  # live for the first 35 min of the demo scenario
RUNS = itertools.count()  # one fresh database per run
CLI = [sys.executable, "-m", "collector"]
TICKS = os.sysconf("SC_CLK_TCK")
WANTED = re.compile(
    r"^(collector_schedule_lag_seconds_bucket|collector_schedule_lag_seconds_count|collector_polls_total"
    r"|collector_poll_duration_seconds_sum|collector_fleet_leases_held)(?:\{([^}]*)\})? (\S+)$",
    re.M,
)


# --- what a process used, from /proc ---------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from the 3rd on (the name may hold spaces)


def cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS


def tree_cpu_seconds(pid: int) -> float:
    """A process, its reaped children (cutime, cstime) and its live children: PostgreSQL's backends."""
    fields = _stat(pid)
    total = sum(int(f) for f in fields[11:15]) / TICKS
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                child = _stat(int(entry.name))
            except (OSError, ValueError):
                continue  # exited meanwhile
            if int(child[1]) == pid:
                total += (int(child[11]) + int(child[12])) / TICKS
    return total


def runqueue_wait_seconds(pid: int) -> float:
    """Time the process's main thread (a replica's event loop) spent runnable but waiting for a core."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def postmaster(server: PostgresServer) -> int:
    if server.pid is None:
        raise SystemExit(f"PostgreSQL stopped during the benchmark:\n{server.log_tail()}")
    return server.pid


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- the parts: PostgreSQL, the simulator, replicas --------------------------------------------------


@contextmanager
def simulator_process(folder: Path) -> Iterator[tuple[str, int]]:
    log = folder / "simulator.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*CLI, "simulate", "--listen", "127.0.0.1:0"], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while not (found := re.search(r"listening on (http://\S+)", log.read_text())):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"simulator did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield found.group(1), proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def targets_toml(count: int) -> str:
    return "".join(
        f'[[targets]]\nname = "live-{i}"\nplatform = "tiktok"\nkind = "live"\n'
        f'account = "{ACCOUNTS[i % len(ACCOUNTS)]}"\ninterval = "{INTERVAL:g}s"\n\n'
        for i in range(count)
    )


def replica_config(home: Path, database_url: str, sim: str, port: int, fleet: bool, targets: str) -> Path:
    home.mkdir(parents=True)
    config = home / "config.toml"
    # The platform's politeness limits are lifted: what is measured is the replica, not the budget.
    config.write_text(
        f"""[collector]
database_url = "{database_url}"
spool_dir = "{home / "spool"}"
metrics_listen = "127.0.0.1:{port}"
shutdown_grace = "5s"

[fleet]
enabled = {str(fleet).lower()}
lease = "{LEASE:g}s"

[http]
timeout = "10s"

[platforms.tiktok]
base_urls = {{ web = "{sim}/www.tiktok.com", webcast = "{sim}/webcast.tiktok.com" }}
requests_per_second = 100000.0
max_concurrency = 64

{targets}""",
        encoding="utf-8",
    )
    return config


@dataclass
class Replica:
    proc: subprocess.Popen[bytes]
    port: int

    def scrape(self) -> dict[str, float]:
        """The lag buckets (`le=...`), `started`, `polls`, `ok`, `poll_seconds` and `held` from /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=30) as resp:
            page = resp.read().decode()
        out: dict[str, float] = {}
        for name, labels, value in WANTED.findall(page):
            if name.endswith("_bucket"):
                key = "le=" + re.search(r'le="([^"]+)"', labels).group(1)  # type: ignore[union-attr]
            elif name == "collector_polls_total":
                out["ok"] = out.get("ok", 0.0) + (float(value) if 'outcome="ok"' in labels else 0.0)
                key = "polls"
            elif name == "collector_poll_duration_seconds_sum":
                key = "poll_seconds"
            else:
                key = "started" if name.endswith("_count") else "held"
            out[key] = out.get(key, 0.0) + float(value)
        return out


def wait_listening(replica: Replica, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            replica.scrape()
            return
        except OSError:
            if time.monotonic() > deadline or replica.proc.poll() is not None:
                raise SystemExit(f"replica did not start:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.5)


def stop(fleet: Sequence[Replica]) -> None:
    """SIGTERM to all at once (a run's figures are taken; the handover is not measured here)."""
    for replica in fleet:
        if replica.proc.poll() is None:
            replica.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for replica in fleet:
        try:
            replica.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            replica.proc.kill()
            replica.proc.wait()


async def _fetchval(url: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def commits(server: PostgresServer, database: str) -> int:
    sql = "SELECT xact_commit FROM pg_stat_database WHERE datname = $1"
    return int(asyncio.run(_fetchval(server.url_for("postgres"), sql, database)))  # type: ignore[arg-type]


# --- one measured run ---------------------------------------------------------------------------------


@dataclass
class Run:
    targets: int
    replicas: int
    fleet: bool
    window: float  # seconds between the two scrapes
    cpu_window: float  # seconds between the two readings of the CPU counters
    polls: float  # completed in the window
    ok: float
    started: float
    poll_seconds: float  # wall time of the completed polls, summed
    lag_p99: float
    within_1s: float  # share of polls started at most 1 s late
    held: list[float]
    replica_cpu: list[float]  # CPU-seconds in the window, each replica
    replica_wait: list[float]  # seconds each replica's event loop waited for a core in the window
    postgres_cpu: float
    simulator_cpu: float
    simulator_wait: float
    rss: list[float]  # MiB, each replica at the window's end
    transactions: int

    @property
    def due_per_s(self) -> float:
        return self.targets / INTERVAL

    @property
    def holds(self) -> bool:
        """p99 lag within 1 s and the polls keeping up with what is due."""
        return self.within_1s >= 0.99 and self.started / self.window >= 0.9 * self.due_per_s

    def cores(self, seconds: float) -> float:
        return seconds / self.cpu_window


def lag_quantile(buckets: dict[float, float], q: float) -> float:
    """`histogram_quantile` on cumulative bucket counts keyed by upper bound."""
    bounds = sorted(buckets)
    total = buckets[math.inf]
    if total <= 0:
        return math.nan
    rank, lower, below = q * total, 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == math.inf:
                return lower  # past the last finite bound: at least that
            return lower + (bound - lower) * (rank - below) / max(buckets[bound] - below, 1e-9)
        lower, below = bound, buckets[bound]
    return lower


@dataclass
class Snapshot:
    """Every counter of a run at one moment; CPU and scrapes are timed apart (a scrape of a loaded
    replica can take seconds)."""

    scrapes: list[dict[str, float]]
    scraped_at: float  # monotonic, mid-scrape
    replica_cpu: list[float]
    replica_wait: list[float]
    postgres_cpu: float
    simulator_cpu: float
    simulator_wait: float
    read_at: float  # monotonic, when the CPU counters were read
    rss: list[float]
    commits: int

    @classmethod
    def take(cls, server: PostgresServer, sim_pid: int, database: str, fleet: Sequence[Replica]) -> Snapshot:
        for replica in fleet:
            if replica.proc.poll() is not None:
                raise SystemExit(f"a replica exited with {replica.proc.returncode} during the run")
        read_at = time.monotonic()
        cpu = [cpu_seconds(r.proc.pid) for r in fleet]
        wait = [runqueue_wait_seconds(r.proc.pid) for r in fleet]
        postgres = tree_cpu_seconds(postmaster(server))
        simulator, simulator_wait = cpu_seconds(sim_pid), runqueue_wait_seconds(sim_pid)
        before_scrapes = time.monotonic()
        scrapes = [r.scrape() for r in fleet]
        scraped_at = (before_scrapes + time.monotonic()) / 2
        rss = [rss_mib(r.proc.pid) for r in fleet]
        return cls(
            scrapes, scraped_at, cpu, wait, postgres, simulator, simulator_wait, read_at, rss,
            commits(server, database),
        )  # fmt: skip


def measure(
    server: PostgresServer,
    sim: tuple[str, int],
    folder: Path,
    *,
    targets: int,
    replicas: int,
    fleet: bool,
    warmup: float,
    window: float,
) -> Run:
    database = f"bench_{next(RUNS)}"
    server.execute(f"CREATE DATABASE {database}")
    url = server.url_for(database)
    toml = targets_toml(targets)
    fleet_of: list[Replica] = []
    try:
        for i in range(replicas):
            home, port = folder / database / f"replica-{i}", free_port()
            config = replica_config(home, url, sim[0], port, fleet, toml)
            with open(home / "collector.log", "w") as out:
                proc = subprocess.Popen(
                    [*CLI, "--log-level", "warning", "run", "--config", str(config)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            fleet_of.append(Replica(proc, port))
            time.sleep(0.3)  # a staggered start, as a rollout does
        for i, replica in enumerate(fleet_of):
            wait_listening(replica, folder / database / f"replica-{i}" / "collector.log")
        time.sleep(warmup)
        before = Snapshot.take(server, sim[1], database, fleet_of)
        time.sleep(window)
        after = Snapshot.take(server, sim[1], database, fleet_of)
    finally:
        stop(fleet_of)
        server.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")

    def delta(key: str) -> float:
        return sum(
            a.get(key, 0.0) - b.get(key, 0.0) for a, b in zip(after.scrapes, before.scrapes, strict=True)
        )

    def deltas(name: str) -> list[float]:
        return [a - b for a, b in zip(getattr(after, name), getattr(before, name), strict=True)]

    buckets = {float(k[3:]): delta(k) for k in after.scrapes[0] if k.startswith("le=")}
    return Run(
        targets,
        replicas,
        fleet,
        window=after.scraped_at - before.scraped_at,
        cpu_window=after.read_at - before.read_at,
        polls=delta("polls"),
        ok=delta("ok"),
        started=delta("started"),
        poll_seconds=delta("poll_seconds"),
        lag_p99=lag_quantile(buckets, 0.99),
        within_1s=buckets[1.0] / buckets[math.inf] if buckets[math.inf] else 0.0,
        held=[s.get("held", 0.0) for s in after.scrapes],
        replica_cpu=deltas("replica_cpu"),
        replica_wait=deltas("replica_wait"),
        postgres_cpu=after.postgres_cpu - before.postgres_cpu,
        simulator_cpu=after.simulator_cpu - before.simulator_cpu,
        simulator_wait=after.simulator_wait - before.simulator_wait,
        rss=after.rss,
        transactions=after.commits - before.commits,
    )


# --- the lease loop alone -----------------------------------------------------------------------------


class _Idle:
    """The scheduler as the fleet sees it, with nothing polling."""

    def busy(self, _name: str) -> bool:
        return False

    def due_in(self, _names: object) -> dict[str, float]:
        return {}


async def lease_loop(
    url: str, postgres_pid: int, targets: int, seconds: float
) -> tuple[float, float, float, float]:
    """Transactions and statements per second of one replica's `Fleet` loop holding `targets` leases
    (run in this process, after the claim), and CPU-seconds per second here and in PostgreSQL."""
    configs = [TargetConfig(f"live-{i}", "tiktok", "live", INTERVAL, {}, "bench") for i in range(targets)]
    store = Store(url, configs)
    await store.prepare()
    counts = {"transactions": 0, "statements": 0}

    def counting(key: str):  # type: ignore[no-untyped-def]
        return lambda *_a, **_k: counts.__setitem__(key, counts[key] + 1)

    event.listen(store.engine.sync_engine, "begin", counting("transactions"))
    event.listen(store.engine.sync_engine, "before_cursor_execute", counting("statements"))

    async def on_change(*_args: object) -> None:
        return None

    by_name = {t.name: t for t in configs}
    fleet = Fleet(
        Leases(store.engine, "bench:1", LEASE),
        lambda: by_name,
        on_change,
        _Idle(),
        SelfMetrics(LiveState([])),
    )
    stop_event = asyncio.Event()
    task = asyncio.create_task(fleet.run(stop_event))
    while len(fleet.held) < targets:
        await asyncio.sleep(0.2)
    await asyncio.sleep(LEASE / 3)  # past one renewal, so the window sees the steady state
    start = dict(counts)
    cpu, pg_cpu, wall = time.process_time(), tree_cpu_seconds(postgres_pid), time.monotonic()
    await asyncio.sleep(seconds)
    spent, pg_spent = time.process_time() - cpu, tree_cpu_seconds(postgres_pid) - pg_cpu
    took = time.monotonic() - wall
    stop_event.set()
    await task
    await fleet.stop()
    await store.close()
    per_s = {k: (counts[k] - start[k]) / took for k in counts}
    return per_s["transactions"], per_s["statements"], spent / took, pg_spent / took


# --- the three parts ------------------------------------------------------------------------------------


def _row(label: str, run: Run) -> str:
    cpu = "+".join(f"{run.cores(c):.2f}" for c in run.replica_cpu)
    wait = "+".join(f"{run.cores(w):.2f}" for w in run.replica_wait)
    per_poll = 1000 * sum(run.replica_cpu) / max(run.polls, 1)
    duration = 1000 * run.poll_seconds / max(run.polls, 1)
    return (
        f"{label:14s} {run.started / run.window:7.0f} {run.due_per_s:5.0f} {run.ok / max(run.polls, 1):6.1%}"
        f" {duration:6.0f}"
        f" {run.lag_p99:7.2f} {run.within_1s:6.1%} {cpu:>14s} {wait:>14s} {per_poll:6.2f}"
        f" {run.cores(run.postgres_cpu):4.2f} {run.cores(run.simulator_cpu):4.2f}/{run.cores(run.simulator_wait):4.2f}"
        f" {max(run.rss):4.0f}"
        f"  {'yes' if run.holds else 'NO'}"
    )


# cores: CPU-seconds per second; wait: seconds per second a replica's event loop was ready to run but
# had no core (the machine is shared); poll ms: mean wall time of a poll; ms/poll: replica CPU per poll.
HEADER = (
    f"{'':14s} {'polls/s':>7s} {'due/s':>5s} {'ok':>6s} {'poll ms':>6s} {'p99 lag':>7s} {'<=1s':>6s} {'replica cores':>14s}"
    f" {'replica wait':>14s} {'ms/poll':>6s} {'pg':>4s} {'sim/wait':>9s} {'RSS':>4s}  holds"
)


def ramp(server: PostgresServer, sim: tuple[str, int], folder: Path, args: argparse.Namespace) -> None:
    kind = "fleet replica" if args.ramp_fleet else "replica with [fleet] enabled = false"
    print(f"\n1. one {kind}, {INTERVAL:g}s interval: targets until p99 schedule lag > 1 s")
    print(HEADER)
    for count in args.steps:
        run = measure(
            server,
            sim,
            folder,
            targets=count,
            replicas=1,
            fleet=args.ramp_fleet,
            warmup=args.warmup,
            window=args.window,
        )
        print(_row(f"{count:,} targets", run), flush=True)
        if not run.holds:
            break


def fleet_sizes(server: PostgresServer, sim: tuple[str, int], folder: Path, args: argparse.Namespace) -> None:
    print(f"\n2. a fleet on {args.fleet_targets:,} targets ({INTERVAL:g}s): 1, 2, 3 replicas on this machine")
    print(HEADER)
    runs = []
    for replicas in (1, 2, 3):
        run = measure(
            server,
            sim,
            folder,
            targets=args.fleet_targets,
            replicas=replicas,
            fleet=True,
            warmup=args.warmup,
            window=args.window,
        )
        runs.append(run)
        held = "/".join(f"{h:.0f}" for h in run.held)
        print(_row(f"{replicas} replica(s)", run), f" held {held}", flush=True)
    one, three = runs[0], runs[-1]
    # Past saturation polls/s is what a fleet can do; a fleet that holds polls only what is due.
    print(
        f"3 replicas vs 1: {three.started / max(one.started, 1):.2f}x polls started, p99 lag "
        f"{three.lag_p99:.2f}s vs {one.lag_p99:.2f}s, replicas' CPU "
        f"{sum(three.replica_cpu) / max(sum(one.replica_cpu), 1e-9):.2f}x, "
        f"whole machine (replicas + pg + sim) {_machine(three) / max(_machine(one), 1e-9):.2f}x"
    )


def _machine(run: Run) -> float:
    return run.cores(sum(run.replica_cpu) + run.postgres_cpu + run.simulator_cpu)


def overhead(server: PostgresServer, sim: tuple[str, int], folder: Path, args: argparse.Namespace) -> None:
    count = args.overhead_targets
    server.execute("CREATE DATABASE bench_leases")
    lease_figures = asyncio.run(
        lease_loop(server.url_for("bench_leases"), postmaster(server), count, args.window)
    )
    transactions, statements, cpu, pg_cpu = lease_figures
    server.execute("DROP DATABASE bench_leases WITH (FORCE)")
    print(f"\n3. overhead of the fleet, one replica, {count:,} targets at {INTERVAL:g}s")
    print(
        f"lease loop alone ({count:,} leases held, lease {LEASE:g}s): {transactions:.2f} transactions/s, "
        f"{statements:.2f} statements/s, {cpu * 1000:.1f} ms CPU/s in the replica, "
        f"PostgreSQL {pg_cpu * 1000:.1f} ms CPU/s"
    )
    results: dict[bool, list[Run]] = {False: [], True: []}
    for _ in range(args.rounds):
        for fleet in (False, True):
            results[fleet].append(
                measure(
                    server,
                    sim,
                    folder,
                    targets=count,
                    replicas=1,
                    fleet=fleet,
                    warmup=args.warmup,
                    window=args.window,
                )
            )
    print(f"per poll, medians of {args.rounds} alternating rounds:")
    print(
        f"{'':18s} {'polls/s':>7s} {'replica CPU-s/1k polls':>23s} {'pg CPU-s/1k polls':>18s} {'db xact/s':>9s}"
    )
    for fleet in (False, True):
        runs = results[fleet]
        print(
            f"{'[fleet] enabled = ' + str(fleet).lower():24s}"
            f" {statistics.median(r.polls / r.window for r in runs):7.0f}"
            f" {statistics.median(1000 * r.replica_cpu[0] / r.polls for r in runs):17.2f}"
            f" {statistics.median(1000 * r.postgres_cpu / r.polls for r in runs):18.2f}"
            f" {statistics.median(r.transactions / r.window for r in runs):9.1f}"
        )


PARTS = {"ramp": ramp, "fleet": fleet_sizes, "overhead": overhead}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench fleet", description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="ramp,fleet,overhead", help="which parts, comma-separated")
    parser.add_argument("--steps", default="1000,2000,3000,4000", help="target counts of the ramp")
    parser.add_argument(
        "--ramp-without-fleet",
        dest="ramp_fleet",
        action="store_false",
        help="ramp a replica without the fleet (no leases, no shared budget): the replica's own ceiling",
    )
    parser.add_argument("--fleet-targets", type=int, default=4000, help="target count of the fleet part")
    parser.add_argument(
        "--overhead-targets", type=int, default=1000, help="target count of the overhead part"
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of the overhead part")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds before measuring")
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured")
    args = parser.parse_args(argv)
    args.steps = [int(s) for s in args.steps.split(",")]
    parts = args.parts.split(",")
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown parts: {', '.join(sorted(unknown))} (known: {', '.join(PARTS)})")
    print(f"fleet benchmark: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    server = PostgresServer()
    server.start()
    with ExitStack() as stack:
        stack.callback(server.cleanup)
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-fleet-")))
        sim = stack.enter_context(simulator_process(folder))
        for part in parts:
            PARTS[part](server, sim, folder, args)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
