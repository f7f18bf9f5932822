"""Poll outcomes and the few error types that carry them, named by the reaction they trigger.

Adapters raise these; the core counts them by outcome, decides whether to back off, and never matches
on message text.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    OK = "ok"
    NOT_LIVE = "not_live"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    BLOCKED = "blocked"
    LOGIN_WALL = "login_wall"
    TIMEOUT = "timeout"
    NETWORK_ERROR = "network_error"
    HTTP_ERROR = "http_error"
    PARSE_FAILURE = "parse_failure"  # the page arrived but its layout is not what the parser knows
    ADAPTER_ERROR = "adapter_error"  # a bug in our adapter code, not a change on the platform
    REFUSED = "refused"  # the outbound guard stopped a request to a host we must not reach


class PollError(Exception):
    """A poll that produced no samples, with the outcome that explains why."""

    outcome: Outcome = Outcome.HTTP_ERROR

    def __init__(
        self,
        detail: str,
        *,
        retry_after: float | None = None,
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after
        self.url = url  # the request that showed the problem, where there was one
        self.status = status  # its HTTP status


class NotFound(PollError):
    outcome = Outcome.NOT_FOUND


class Blocked(PollError):
    """A ban, captcha or WAF page: the parser never sees it."""

    outcome = Outcome.BLOCKED


class LoginWall(PollError):
    """The page needs a logged-in session (including age-restricted rooms)."""

    outcome = Outcome.LOGIN_WALL


class RateLimited(PollError):
    outcome = Outcome.RATE_LIMITED


class Transient(PollError):
    """Timeouts, resets and 5xx: worth retrying later."""

    def __init__(
        self,
        outcome: Outcome,
        detail: str,
        *,
        retry_after: float | None = None,
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(detail, retry_after=retry_after, url=url, status=status)
        self.outcome = outcome


class Refused(PollError):
    outcome = Outcome.REFUSED


class HttpError(PollError):
    outcome = Outcome.HTTP_ERROR


class AdapterError(PollError):
    """An adapter raised something it should not have: a bug to fix in `scrapers/`, not a page change."""

    outcome = Outcome.ADAPTER_ERROR


class ParseFailure(PollError):
    """The page arrived but its layout is not what the parser knows; `reason` is a short stable label."""

    outcome = Outcome.PARSE_FAILURE

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
