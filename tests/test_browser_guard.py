"""Which requests the browser's outbound guard inspects: every one whose host `is_internal` may refuse.

The pattern is the guard's safety boundary (a request it does not match is never checked), so it is
held against `is_internal` over hosts in every form a canonical URL can carry them."""

from __future__ import annotations

import pytest

from collector.browser import maybe_internal_pattern
from collector.http import is_internal

INTERNAL = ["127.0.0.1", "127.0.0.2", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "0.0.0.0",
            "100.64.0.1", "240.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "localhost",
            "a.localhost", "localhost.", "127.0.0.1."]  # fmt: skip
PUBLIC = ["shopee.vn", "live.shopee.vn", "cdn.example.com", "localhost.example.com", "127.0.0.1.nip.io"]
PUBLIC_IPS = ["8.8.8.8", "2001:4860:4860::8888"]
OK_SETS = [frozenset(), frozenset({"127.0.0.1"}), frozenset({"127.0.0.1", "::1", "localhost"})]


def urls(host: str) -> list[str]:
    literal = f"[{host}]" if ":" in host else host
    return [f"{scheme}://{user}{literal}{port}{rest}"
            for scheme in ("http", "https", "ws")
            for user in ("", "u:p@")
            for port in ("", ":8080")
            for rest in ("", "/", "/a/b?q=1", "?q", "#f")]  # fmt: skip


@pytest.mark.parametrize("internal_ok", OK_SETS, ids=lambda s: ",".join(sorted(s)) or "none")
def test_every_request_the_guard_may_refuse_is_matched(internal_ok: frozenset[str]) -> None:
    pattern = maybe_internal_pattern(internal_ok)
    for host in INTERNAL:
        refused = is_internal(host.rstrip(".")) and host.rstrip(".") not in internal_ok
        for url in urls(host):
            if refused:
                assert pattern.search(url), url
            elif host in internal_ok:
                assert not pattern.search(url), url  # the simulator's own requests stay in the driver


@pytest.mark.parametrize("host", PUBLIC + PUBLIC_IPS)
def test_public_names_stay_in_the_driver(host: str) -> None:
    pattern = maybe_internal_pattern(frozenset({"127.0.0.1"}))
    for url in urls(host):
        # Public IP literals are matched too (the handler lets them through); names never are.
        assert bool(pattern.search(url)) is (host in PUBLIC_IPS), url
