"""TikTok: creators' live rooms (`live`, scrapers.tiktok.live), hashtags (`hashtag`,
scrapers.tiktok.hashtag) and an authorised shop's sessions with reported orders and GMV from the
TikTok Shop Partner API (`shop_lives`, scrapers.tiktok.shop). Shapes: shared/platforms.md sections
2.1, 2.2, 5b and 6.

Each kind's module has its pure parsers, its field check and its poll; this table ties them together.
"""

from __future__ import annotations

import re

from collector.api import KindSpec, PageMarkers
from scrapers.tiktok.hashtag import (
    check_hashtag,
    normalise_tag,
    parse_challenge_detail,
    parse_tag_page,
    poll_hashtag,
    reparse_hashtag,
)
from scrapers.tiktok.live import (
    RoomLookup,
    RoomState,
    account_handle,
    check_live,
    parse_live_page,
    parse_room_info,
    parse_user_room,
    poll_live,
    reparse_live,
    room_history,
)
from scrapers.tiktok.shop import ShopState, check_shop, poll_shop, reparse_shop, shop_history


class TikTokAdapter:
    name = "tiktok"
    kinds = {
        "live": KindSpec(
            poll_live,
            required=("account",),
            check=check_live,
            new_state=RoomState,
            reparse=reparse_live,
            history=room_history,
            summary="a creator's live room, by @handle or profile/live URL",
        ),
        "hashtag": KindSpec(
            poll_hashtag,
            required=("tag",),
            uses_browser=True,
            check=check_hashtag,
            reparse=reparse_hashtag,
            summary="a hashtag's views and posts, by tag (with or without '#', any case) or tag URL",
        ),
        "shop_lives": KindSpec(
            poll_shop,
            optional=("start_date", "end_date", "access_token_expires"),
            required_secrets=("app_key", "app_secret", "shop_cipher"),
            optional_secrets=("access_token", "refresh_token"),
            check=check_shop,
            new_state=ShopState,
            reparse=reparse_shop,
            history=shop_history,
            history_lists_sessions=True,
            summary="an authorised shop's live sessions: reported orders, GMV, buyers (Partner API)",
        ),
    }
    default_base_urls = {
        "web": "https://www.tiktok.com",
        "webcast": "https://webcast.tiktok.com",
        "partner": "https://open-api.tiktokglobalshop.com",
        "auth": "https://auth.tiktok-shops.com",
    }
    # The WAF challenge and captcha pages TikTok serves in place of content (platforms.md 2.1).
    markers = PageMarkers(blocked=(re.compile(rb"_wafchallengeid"), re.compile(rb"captcha_verify_container")))


adapter = TikTokAdapter()

__all__ = [
    "RoomLookup",
    "RoomState",
    "TikTokAdapter",
    "account_handle",
    "adapter",
    "normalise_tag",
    "parse_challenge_detail",
    "parse_live_page",
    "parse_room_info",
    "parse_tag_page",
    "parse_user_room",
]
