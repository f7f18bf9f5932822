"""What the TikTok live and hashtag code share: web params, headers, block-page classification."""

from __future__ import annotations

from collector.api import Blocked, LoginWall, PollError

WEB_PARAMS = {"aid": "1988", "app_name": "tiktok_web", "device_platform": "web_pc"}


def brief(value: object) -> str:
    """A JSON value for an error message; containers are named, not rendered (deep nesting cannot be)."""
    return repr(value)[:80] if isinstance(value, str | int | float | None) else type(value).__name__


def referer(web: str) -> dict[str, str]:
    return {"Referer": f"{web}/", "Origin": web}


def classify_page_without_data(body: bytes, what: str) -> PollError:
    """The error a TikTok HTML page stands for when the data the parser looks for is not in it.

    `what` names the page and the missing part, for the message of the default (block) case.
    """
    if b"_wafchallengeid" in body or b'id="wci"' in body or b'id="cs"' in body:
        return Blocked("TikTok WAF challenge page")
    if b"/login" in body[:4096] and b"SIGI_STATE" not in body:
        return LoginWall("TikTok redirected to login")
    return Blocked(f"{what} (captcha or block page)")
