"""Start-up problems that come from the machine, not the file: a port taken, a directory that cannot exist.

The configuration is valid, yet the service cannot start with it. Each problem names the setting to change
so the command line can print one line for it and exit 2, as it does for configuration errors.
"""

from __future__ import annotations

import errno


class StartupError(Exception):
    """A setting the environment refuses: `setting` is its key path, the message says what and why."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting


_BIND_PROBLEMS = {
    errno.EADDRINUSE: "the port is already in use (a demo or another collector still running?)",
    errno.EADDRNOTAVAIL: "the address is not one of this machine's",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
}


def os_problem(exc: OSError, named: object) -> str:
    """The system's words for it, and the path it concerns when that is not the `named` one."""
    text = exc.strerror or str(exc)
    return f"{text} ({exc.filename})" if exc.filename and str(exc.filename) != str(named) else text


def listen_problem(listen: str, exc: OSError) -> str:
    why = _BIND_PROBLEMS.get(exc.errno or 0) or exc.strerror or str(exc)
    return f"cannot listen on {listen}: {why}"
