"""Throwaway PostgreSQL server for the test suite, run from the local PostgreSQL binaries."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest

SKIP_REASON = "PostgreSQL binaries not found (install Debian's postgresql package)"
START_TIMEOUT = 30.0
STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


def _is_bindir(path: Path) -> bool:
    """True if path holds both initdb and postgres executables."""
    return all(os.access(path / name, os.X_OK) for name in ("initdb", "postgres"))


def find_postgres_bindir() -> Path | None:
    """Locate a directory with the PostgreSQL server binaries, or None."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        # libpq-dev's pg_config reports /usr/bin, which has no server binaries, hence the check.
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and _is_bindir(Path(out.stdout.strip())):
            return Path(out.stdout.strip())

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", Path(path).parent.name))

    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if _is_bindir(Path(candidate)):
            return Path(candidate)

    initdb = shutil.which("initdb")
    if initdb and _is_bindir(Path(initdb).resolve().parent):
        return Path(initdb).resolve().parent
    return None


def plain_dsn(url: str) -> str:
    """Turn a SQLAlchemy URL like postgresql+asyncpg://... into a libpq/asyncpg DSN."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def query(url: str, sql: str) -> list[asyncpg.Record]:
    """Rows of one statement, read straight from the server (as an operator's psql would)."""

    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(plain_dsn(url))
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()

    return _run_async(run())


def _free_port() -> int:
    """Ask the kernel for an unused loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_async(coro: Any) -> Any:
    """Run a coroutine to completion even if the caller is already inside an event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _unprivileged_user() -> pwd.struct_passwd:
    """The account to run initdb/postgres as when we are root (both refuse to run as root)."""
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return pwd.getpwnam("nobody")


class PostgresServer:
    """A PostgreSQL cluster in a temp dir, listening on 127.0.0.1 at a fixed port."""

    def __init__(self, bindir: Path | None = None) -> None:
        found = bindir or find_postgres_bindir()
        if found is None:
            raise FileNotFoundError(SKIP_REASON)
        self.bindir = Path(found)
        self.port = _free_port()
        self._base = Path(tempfile.mkdtemp(prefix="pgtest-"))
        self._data = self._base / "data"
        self._sockdir = self._base / "sock"
        self._logfile = self._base / "postgres.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._run_as: dict[str, Any] = {}
        self._sockdir.mkdir()
        if os.geteuid() == 0:
            # subprocess's user/group drop privileges in the child itself, so Popen.pid is the
            # postmaster and stop() signals reach it directly (unlike through a runuser wrapper).
            user = _unprivileged_user()
            self._run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
            for path in (self._base, self._sockdir):
                os.chown(path, user.pw_uid, user.pw_gid)

    @property
    def url(self) -> str:
        """SQLAlchemy async URL of the `collector` database."""
        return self.url_for("collector")

    def url_for(self, database: str) -> str:
        """SQLAlchemy async URL of any database on this server."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs (its backends are its children)."""
        return self._proc.pid if self.running else None  # type: ignore[union-attr]

    @property
    def running(self) -> bool:
        """True while the postmaster process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Initialise the cluster on first call, then start the server; no-op if running."""
        if self.running:
            return
        first_start = not (self._data / "PG_VERSION").exists()
        if first_start:
            self._initdb()
        with open(self._logfile, "ab") as log:
            self._proc = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self._data),
                    # --name=value is postgres's spelling of "-c name=value".
                    f"--port={self.port}",
                    f"--unix_socket_directories={self._sockdir}",
                    "--listen_addresses=127.0.0.1",
                    "--fsync=off",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self._base,
                **self._run_as,
            )
        try:
            _run_async(self._wait_ready())
            if first_start:
                self.execute("CREATE DATABASE collector")
        except BaseException:
            self.stop("immediate")
            raise

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (smart/fast/immediate) and wait; the data dir is kept for start()."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(STOP_SIGNALS[mode])
            try:
                self._proc.wait(timeout=START_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def cleanup(self) -> None:
        """Stop the server if running and delete the temp dir."""
        self.stop()
        shutil.rmtree(self._base, ignore_errors=True)

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run one statement outside a transaction (as CREATE/DROP DATABASE need)."""

        async def run() -> None:
            conn = await asyncpg.connect(plain_dsn(self.url_for(database)))
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        _run_async(run())

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of the server log, for error messages."""
        try:
            return "\n".join(self._logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def _initdb(self) -> None:
        """Create the cluster with a trusting `postgres` superuser."""
        result = subprocess.run(
            [
                str(self.bindir / "initdb"),
                f"--pgdata={self._data}",
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                # An explicit locale stops initdb failing when $LANG names an uninstalled locale.
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            cwd=self._base,
            **self._run_as,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    async def _wait_ready(self) -> None:
        """Poll until a real connection succeeds; a bare TCP accept happens before recovery ends."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._proc is None or self._proc.poll() is not None:
                raise RuntimeError(f"postgres exited during startup:\n{self.log_tail()}")
            try:
                conn = await asyncpg.connect(plain_dsn(self.url_for("postgres")), timeout=2)
            # TimeoutError is an OSError; InterfaceError covers a connection dropped mid-handshake.
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"postgres not ready after {START_TIMEOUT:.0f}s on port {self.port}:\n"
                        f"{self.log_tail()}"
                    ) from None
                await asyncio.sleep(0.1)
            else:
                try:
                    data_dir = await conn.fetchval("SHOW data_directory")
                finally:
                    await conn.close()
                # Someone else's server may hold our port, e.g. one started while we were stopped.
                if Path(data_dir).resolve() != self._data.resolve():
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self._proc.wait(timeout=5)  # let ours log why it failed to bind
                    raise RuntimeError(
                        f"port {self.port} is served by another PostgreSQL ({data_dir}):\n{self.log_tail()}"
                    )
                return


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A started PostgresServer shared by the whole session."""
    if find_postgres_bindir() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(SKIP_REASON)  # CI must exercise the database tests, never skip them
        pytest.skip(SKIP_REASON)
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a fresh empty database, dropped after the test."""
    if request.node.get_closest_marker("integration") is None:
        pytest.fail(f"{request.node.nodeid} starts PostgreSQL: mark it @pytest.mark.integration")
    name = f"t_{uuid.uuid4().hex}"
    postgres_server.start()  # an earlier test may have stopped the server
    postgres_server.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.url_for(name)
    postgres_server.start()
    # FORCE ends connections a test left open (e.g. an undisposed engine pool).
    postgres_server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
