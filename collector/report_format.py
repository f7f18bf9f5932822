"""Labels and number formatting for people: Vietnamese (`1,2 Tr`, `300.000.000 ₫`) or English."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

# Vietnam keeps one offset all year; organisers read every time in it.
DISPLAY_ZONE = timezone(timedelta(hours=7), "UTC+7")
LANGS = ("vi", "en")

LABELS: dict[str, dict[str, str]] = {
    "vi": {
        "report": "Báo cáo chiến dịch",
        "window": "Thời gian",
        "open_end": "đến nay",
        "generated": "Lập lúc",
        "headline_numbers": "Số liệu chính",
        "live_views": "Lượt xem live",
        "peak_concurrent_viewers": "Người xem cùng lúc cao nhất",
        "viewers_now": "Đang xem",
        "revenue": "Doanh thu",
        "headline": "Doanh thu (chính)",
        "reported": "báo cáo",
        "estimated": "ước tính",
        "headline_note": "{reported} phiên theo số liệu shop báo cáo, {estimated} phiên ước tính",
        "orders": "Đơn hàng",
        "items_sold": "Sản phẩm bán",
        "likes": "Lượt thích",
        "comments": "Bình luận",
        "shares": "Chia sẻ",
        "hashtag_views": "Lượt xem hashtag",
        "hashtag_posts": "Bài đăng hashtag",
        "growth": "tăng",
        "sessions": "Phiên live",
        "sessions_live_now": "Đang live",
        "goal": "mục tiêu",
        "by_platform": "Theo nền tảng",
        "platform": "Nền tảng",
        "session_list": "Các phiên live",
        "session": "Phiên",
        "start": "Bắt đầu",
        "duration": "Thời lượng",
        "peak_viewers": "Đỉnh xem",
        "views": "Lượt xem",
        "live_now": "Đang phát trực tiếp",
        "none_live": "Không có phiên nào đang live",
        "hashtags": "Hashtag",
        "tag": "Hashtag",
        "views_start": "Đầu kỳ",
        "views_end": "Cuối kỳ",
        "gaps": "Khoảng trống dữ liệu",
        "no_gaps": "Không có khoảng trống nào được ghi nhận (backfill gaps tìm chúng).",
        "target": "Mục tiêu",
        "end": "Kết thúc",
        "status": "Trạng thái",
        "detail": "Chi tiết",
        "charts": "Biểu đồ",
        "chart_viewers": "Người xem cùng lúc theo nền tảng",
        "chart_views": "Lượt xem live cộng dồn theo nền tảng",
        "chart_revenue": "Doanh thu cộng dồn (chính)",
        "chart_hashtags": "Lượt xem hashtag",
        "provenance_note": "Báo cáo = số liệu của shop; ước tính = suy ra từ số đã bán trên trang live "
        "công khai. Hai loại không bao giờ được cộng gộp.",
        "marketplace_shops": "Gian hàng trên sàn TMĐT (ước tính)",
        "shop": "Gian hàng",
        "marketplace_note": "Sàn TMĐT: ước tính = số đã bán công khai tăng thêm "
        "trong khung thời gian × giá bán lúc đó.",
        "rounded_note": "{target} ({platform}): số đã bán hiển thị làm tròn (1,2k), doanh thu trong "
        "khoảng {low} – {high}.",
        "updated": "Cập nhật",
        "offline": "Mất kết nối, đang thử lại…",
        "views_unit": "lượt xem",
    },
    "en": {
        "report": "Campaign report",
        "window": "Window",
        "open_end": "now",
        "generated": "Generated",
        "headline_numbers": "Headline numbers",
        "live_views": "Live views",
        "peak_concurrent_viewers": "Peak concurrent viewers",
        "viewers_now": "Watching now",
        "revenue": "Revenue",
        "headline": "Revenue (headline)",
        "reported": "reported",
        "estimated": "estimated",
        "headline_note": "{reported} sessions from shop-reported figures, {estimated} estimated",
        "orders": "Orders",
        "items_sold": "Items sold",
        "likes": "Likes",
        "comments": "Comments",
        "shares": "Shares",
        "hashtag_views": "Hashtag views",
        "hashtag_posts": "Hashtag posts",
        "growth": "up",
        "sessions": "Live sessions",
        "sessions_live_now": "Live now",
        "goal": "goal",
        "by_platform": "By platform",
        "platform": "Platform",
        "session_list": "Live sessions",
        "session": "Session",
        "start": "Start",
        "duration": "Duration",
        "peak_viewers": "Peak",
        "views": "Views",
        "live_now": "Live right now",
        "none_live": "No session is live",
        "hashtags": "Hashtags",
        "tag": "Hashtag",
        "views_start": "Start",
        "views_end": "End",
        "gaps": "Data gaps",
        "no_gaps": "No gaps recorded (backfill gaps finds them).",
        "target": "Target",
        "end": "End",
        "status": "Status",
        "detail": "Detail",
        "charts": "Charts",
        "chart_viewers": "Concurrent viewers by platform",
        "chart_views": "Cumulative live views by platform",
        "chart_revenue": "Cumulative revenue (headline)",
        "chart_hashtags": "Hashtag views",
        "provenance_note": "Reported = the shop's own figures; estimated = derived from items sold on the "
        "public live page. The two are never added together.",
        "marketplace_shops": "Marketplace shops (estimated)",
        "shop": "Shop",
        "marketplace_note": "Marketplaces: estimated = the rise of the public sold "
        "counter in the window × the selling price at the time.",
        "rounded_note": "{target} ({platform}): sold counter shown rounded (1.2k); revenue between {low} "
        "and {high}.",
        "updated": "Updated",
        "offline": "Connection lost, retrying…",
        "views_unit": "views",
    },
}
# (threshold, Vietnamese suffix, English suffix): Vietnamese organisers write "1,2 Tr", "3,4 Tỷ".
_COMPACT = ((1e9, "Tỷ", "B"), (1e6, "Tr", "M"), (1e3, "N", "K"))
_CURRENCY_SYMBOL = {"VND": "₫"}


@dataclass(frozen=True, slots=True)
class Labels:
    lang: str

    def t(self, key: str, **values: object) -> str:
        return LABELS[self.lang][key].format(**values)

    @property
    def separators(self) -> tuple[str, str]:
        """(thousands, decimal)."""
        return (".", ",") if self.lang == "vi" else (",", ".")

    def number(self, value: float | None, decimals: int = 0) -> str:
        if value is None:
            return "–"
        thousands, decimal = self.separators
        text = f"{value:,.{decimals}f}"
        return text.replace(",", "\0").replace(".", decimal).replace("\0", thousands)

    def compact(self, value: float | None) -> str:
        """`1,2 Tr` / `1.2M`: one decimal, dropped when it is zero."""
        if value is None:
            return "–"
        for threshold, vi, en in _COMPACT:
            if abs(value) >= threshold:
                scaled = self.number(value / threshold, 1)
                _, decimal = self.separators
                scaled = scaled.removesuffix(f"{decimal}0")
                return f"{scaled} {vi}" if self.lang == "vi" else f"{scaled}{en}"
        return self.number(value)

    def money(self, value: float | None, currency: str | None) -> str:
        if value is None:
            return "–"
        currency = currency or "VND"
        if self.lang == "vi":
            return f"{self.number(value)} {_CURRENCY_SYMBOL.get(currency, currency)}"
        return f"{self.number(value)} {currency}"

    def percent(self, part: float, whole: float) -> str:
        return f"{self.number(100 * part / whole, 1)} %" if whole else "–"

    def when(self, iso_text: str | None) -> str:
        if iso_text is None:
            return "–"
        local = datetime.fromisoformat(iso_text.replace("Z", "+00:00")).astimezone(DISPLAY_ZONE)
        return local.strftime("%d/%m %H:%M") if self.lang == "vi" else local.strftime("%b %d %H:%M")

    def duration(self, seconds: float | None) -> str:
        if seconds is None:
            return "–"
        minutes = round(seconds / 60)
        return f"{minutes // 60}h{minutes % 60:02d}"
