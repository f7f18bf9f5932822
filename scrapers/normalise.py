"""Turn the counter, money and time values that platform pages show into plain numbers.

Every adapter goes through this module, so the number conventions live in one place. They are the
shapes listed in shared/platforms.md section 1: TikTok JSON integers and `statsV2` strings, abbreviated
display text ("1.1M posts", "12.3B views", Facebook "1.4K" or "2,3K"), Vietnamese text ("3,3 Tr lượt
xem", "4,8Tr", "1,2 N", "1,5 Tỷ", "Đã bán 1,2k"), Shopee prices scaled by 100000, and epoch
timestamps in seconds (TikTok) or milliseconds (Shopee). Parsers are strict: anything they cannot read
without guessing raises `NumberFormatError`, a `ValueError`, and never another exception type.
"""

from __future__ import annotations

import math
import re
import reprlib
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

__all__ = [
    "Money",
    "NumberFormatError",
    "format_count_en",
    "format_count_vi",
    "parse_count",
    "parse_money",
    "shopee_price",
    "to_utc",
]


_brief = reprlib.Repr()
_brief.maxstring = _brief.maxother = 120
_brief.maxlevel = 3


class NumberFormatError(ValueError):
    """A value that is not a number in any shape the platforms use; `value` is the input."""

    def __init__(self, what: str, value: object) -> None:
        # reprlib bounds size and depth: a whole page or a 1,000-deep list never reaches the logs.
        super().__init__(f"not a valid {what}: {_brief.repr(value)}")
        self.value = value


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in whole units of `currency` (VND has no minor unit)."""

    amount: int
    currency: str


# Multipliers by lower-cased suffix. K/M/B are English; N (nghìn), Tr (triệu) and T/Tỷ (tỷ) are the
# Vietnamese compact forms (shared/platforms.md section 1); the spelled-out words cost nothing to accept.
_SUFFIXES = {
    "k": 10**3, "n": 10**3, "nghìn": 10**3, "ngàn": 10**3,
    "m": 10**6, "tr": 10**6, "triệu": 10**6,
    "b": 10**9, "t": 10**9, "tỷ": 10**9, "tỉ": 10**9,
}  # fmt: skip

# One numeral, optionally followed by a suffix, anywhere in the text. The numeral keeps all its
# separators (".", "," or a space before a 3-digit group); `_digits` decides what they mean.
# It must not be glued to a word, a decimal mark or a minus sign: ".5K" and "-3" are not counters.
_NUMBER = re.compile(
    r"(?<![\w.,\-−])"
    r"(?P<num>[0-9]+(?:[.,][0-9]+|[ ][0-9]{3}(?![0-9]))*)"
    r"(?:[ ]*(?P<suffix>" + "|".join(sorted(_SUFFIXES, key=len, reverse=True)) + r"))?"
    r"(?!\w)",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(r"[., ]")
_ANY_DIGIT = re.compile(r"\d")  # Unicode digits too: text with a second number is ambiguous
_CURRENCY = re.compile(r"VN[DĐ]|₫|đ", re.IGNORECASE)
_PLAIN_NUMBER = re.compile(r"\+?([0-9]{1,20})(?:\.([0-9]{1,9}))?")
# Thousands separators that pages use besides the ASCII space (NBSP, narrow NBSP, thin space).
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " "})

# Nothing real has more digits; the cap also keeps int() away from its string-length limit.
_MAX_DIGITS = 30

# Epoch values above this are milliseconds: 1e11 s is the year 5138, 1e11 ms is 1973.
_MS_THRESHOLD = 10**11
# Timestamps outside 2000..2100 are corrupt fields (0, -1, a count in the wrong key), not times.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_SECONDS = 946_684_800  # 2000-01-01T00:00:00Z
_MAX_SECONDS = 4_102_444_800  # 2100-01-01T00:00:00Z

# Shopee search/PDP `price` and live-bag `original_price` are currency units x 100000.
_SHOPEE_PRICE_SCALE = 100_000

# (unit, English suffix, Vietnamese suffix) for the display formats, smallest first.
_UNITS = ((10**3, "K", "N"), (10**6, "M", "Tr"), (10**9, "B", "Tỷ"))


def parse_count(value: str | int | float) -> int:
    """A counter as an int: 1234, 1234.0, "1.234", "1,2 N", "3,4 Tr lượt xem", "12.3B views", "10K+"."""
    if isinstance(value, bool):  # a bool is an int, but never a counter
        raise NumberFormatError("count", value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if value.is_integer():  # False for nan and inf as well
            return int(value)
        raise NumberFormatError("count", value)
    if isinstance(value, str):
        return _parse_text(value, "count", allow_fraction=False)
    raise NumberFormatError("count", value)


def parse_money(value: str | int | float, *, currency: str = "VND") -> Money:
    """An amount of `currency`, rounded to a whole unit: "₫1.234.567", "189.000đ", "1,2 Tr ₫", 89999."""
    if isinstance(value, bool):
        raise NumberFormatError("amount", value)
    if isinstance(value, int):
        return Money(int(value), currency)
    if isinstance(value, float):
        # Creator-dashboard GMV comes as floats (56780000.0); round half up, exactly.
        if not math.isfinite(value):
            raise NumberFormatError("amount", value)
        return Money(int(Decimal(value).to_integral_value(ROUND_HALF_UP)), currency)
    if isinstance(value, str):
        # Currency marks are stripped, not interpreted: the caller knows the page's currency.
        text = _CURRENCY.sub(" ", value)
        return Money(_parse_text(text, "amount", allow_fraction=True, original=value), currency)
    raise NumberFormatError("amount", value)


def shopee_price(raw: int | str) -> int:
    """A Shopee ×100000 price in currency units: 8999900000 -> 89999 (rounded half up)."""
    if isinstance(raw, str) and (match := _PLAIN_NUMBER.fullmatch(raw.strip())) and not match[2]:
        scaled = int(match[1])
    elif isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        scaled = raw
    else:  # -1 is Shopee's "no price"; floats and fractions are not this field's shape
        raise NumberFormatError("Shopee price", raw)
    return (2 * scaled + _SHOPEE_PRICE_SCALE) // (2 * _SHOPEE_PRICE_SCALE)


def to_utc(ts: int | float | str) -> datetime:
    """An epoch timestamp in seconds (TikTok) or milliseconds (Shopee) as an aware UTC datetime."""
    number: int | float
    if isinstance(ts, str) and (match := _PLAIN_NUMBER.fullmatch(ts.strip())):
        number = float(match[0]) if match[2] else int(match[1])
    elif isinstance(ts, int | float) and not isinstance(ts, bool):
        number = ts
    else:
        raise NumberFormatError("timestamp", ts)
    is_ms = number > _MS_THRESHOLD
    scale = 1000 if is_ms else 1
    # Compare before converting: a huge int cannot become a float, and nan/inf fail here too.
    if not _MIN_SECONDS * scale <= number < _MAX_SECONDS * scale:
        raise NumberFormatError("timestamp", ts)
    # timedelta(milliseconds=int) is exact, where ms / 1000 as a float may not be.
    return _EPOCH + (timedelta(milliseconds=number) if is_ms else timedelta(seconds=number))


def format_count_en(n: int) -> str:
    """The English compact display of a counter: 999 -> "999", 1234 -> "1.2K", 3_400_000 -> "3.4M"."""
    return _compact(n, decimal_mark=".", space="", label=1)


def format_count_vi(n: int) -> str:
    """The Vietnamese compact display: 999 -> "999", 1234 -> "1,2 N", 1_500_000_000 -> "1,5 Tỷ"."""
    return _compact(n, decimal_mark=",", space=" ", label=2)


def _compact(n: int, *, decimal_mark: str, space: str, label: int) -> str:
    """`n` to one decimal place of the largest unit that keeps it below 1000, rounded half up."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise NumberFormatError("count to format", n)
    if n < 1000:
        return str(n)
    for unit in _UNITS:
        tenths = (20 * n + unit[0]) // (2 * unit[0])
        # 999_950 rounds to 1000.0K; the next unit shows it as 1M instead.
        if tenths < 10_000:
            break
    whole, tenth = divmod(tenths, 10)
    # Like the pages, drop a zero decimal: "1K", "3 Tr".
    number = f"{whole}{decimal_mark}{tenth}" if tenth else str(whole)
    return f"{number}{space}{unit[label]}"


def _parse_text(text: str, what: str, *, allow_fraction: bool, original: str | None = None) -> int:
    """The one numeral in `text`, scaled by its suffix and rounded half up to an int."""
    original = text if original is None else original
    text = unicodedata.normalize("NFC", text).translate(_SPACES)  # "Tỷ" may arrive decomposed
    match = _NUMBER.search(text)
    # A second number anywhere ("119 reactions · 1.4K shares") means we would have to guess.
    if match is None or _ANY_DIGIT.search(text, 0, match.start()) or _ANY_DIGIT.search(text, match.end()):
        raise NumberFormatError(what, original)
    suffix = match["suffix"]
    multiplier = _SUFFIXES.get(suffix.lower()) if suffix else 1
    digits = _digits(match["num"], suffix is not None, allow_fraction)
    if digits is None or multiplier is None:
        raise NumberFormatError(what, original)
    whole, fraction = digits
    numerator = int(whole + fraction) * multiplier
    denominator = 10 ** len(fraction)
    return (2 * numerator + denominator) // (2 * denominator)


def _digits(numeral: str, has_suffix: bool, allow_fraction: bool) -> tuple[str, str] | None:
    """Split a numeral into (integer digits, fraction digits), or None if its separators are invalid."""
    groups = _SEPARATOR.split(numeral)
    separators = _SEPARATOR.findall(numeral)
    if sum(map(len, groups)) > _MAX_DIGITS:
        return None
    if has_suffix:
        # With a suffix the separator can only be a decimal mark: "1.2K", "1,2 N", "1.234K" = 1234.
        if not separators:
            return numeral, ""
        if len(separators) == 1 and separators[0] != " ":
            return groups[0], groups[1]
        return None
    if _is_grouped(groups, separators):  # "1.234", "1,234,567", "1 234 567"
        return "".join(groups), ""
    # Otherwise the last separator is a decimal mark if it differs from the grouping before it:
    # "1,5", "1.234,5", "1,234,567.89". Counters are integers, so only amounts may have one.
    *grouping, last = separators
    if allow_fraction and last != " " and last not in grouping and _is_grouped(groups[:-1], grouping):
        return "".join(groups[:-1]), groups[-1]
    return None


def _is_grouped(groups: list[str], separators: list[str]) -> bool:
    """True if the separators are one kind of thousands separator between well-formed groups."""
    if not separators:
        return True
    # "0.500" and "1234.567" are not thousands groupings; "1.234" is (shared/platforms.md section 1:
    # Vietnamese pages use a dot for thousands), and so is "1,234" on English ones.
    return (
        len(set(separators)) == 1
        and len(groups[0]) <= 3
        and not groups[0].startswith("0")
        and all(len(group) == 3 for group in groups[1:])
    )
