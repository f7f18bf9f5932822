"""TikTok: creators' live rooms (`live`, scrapers.tiktok.live) and hashtags (`hashtag`,
scrapers.tiktok.hashtag). Shapes: shared/platforms.md sections 2.1, 2.2 and 6.

The adapter only dispatches on the target's kind; each kind's module has its pure parsers and its poll.
"""

from __future__ import annotations

from collector.adapters import KindSpec, PollContext, PollResult
from scrapers.tiktok.hashtag import normalise_tag, parse_challenge_detail, parse_tag_page, poll_hashtag
from scrapers.tiktok.live import RoomLookup, parse_live_page, parse_room_info, parse_user_room, poll_live


class TikTokAdapter:
    name = "tiktok"
    kinds = {
        "live": KindSpec(required=("account",), summary="a creator's live room, by @account"),
        "hashtag": KindSpec(
            required=("tag",),
            uses_browser=True,
            summary="a hashtag's views and posts, by tag (with or without '#', any case)",
        ),
    }
    default_base_urls = {"web": "https://www.tiktok.com", "webcast": "https://webcast.tiktok.com"}

    async def poll(self, ctx: PollContext) -> PollResult:
        if ctx.target.kind == "hashtag":
            return await poll_hashtag(ctx)
        return await poll_live(ctx)


adapter = TikTokAdapter()

__all__ = [
    "RoomLookup",
    "TikTokAdapter",
    "adapter",
    "normalise_tag",
    "parse_challenge_detail",
    "parse_live_page",
    "parse_room_info",
    "parse_tag_page",
    "parse_user_room",
]
