"""Tests for scrapers.normalise: the shapes of shared/platforms.md section 1, then properties."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scrapers.normalise import (
    Money,
    NumberFormatError,
    format_count_en,
    format_count_vi,
    parse_count,
    parse_money,
    shopee_price,
    to_utc,
)

COUNTS = [
    # ints, whole floats, numeric strings (TikTok JSON and statsV2)
    (0, 0),
    (56789, 56789),
    (1234.0, 1234),
    ("56789", 56789),
    ("007", 7),
    # English abbreviations (TikTok tag header, Facebook i18n counts)
    ("1.2K", 1200),
    ("1.4K", 1400),
    ("56.7K", 56700),
    ("3.4M", 3_400_000),
    ("12.3B", 12_300_000_000),
    ("1.2k", 1200),
    ("3.4m", 3_400_000),
    ("12.3b", 12_300_000_000),
    ("2,3K", 2300),  # Facebook in the vi locale
    ("1.234K", 1234),  # with a suffix the separator is a decimal mark
    ("1.2345K", 1235),  # rounded half up
    ("0,5K", 500),
    # Vietnamese suffixes
    ("1,2 N", 1200),
    ("1,8 N", 1800),
    ("3,4 Tr", 3_400_000),
    ("4,8Tr", 4_800_000),
    ("3,3 tr", 3_300_000),
    ("2 T", 2_000_000_000),
    ("1,5 Tỷ", 1_500_000_000),
    ("1,5 tỷ", 1_500_000_000),
    ("1,5 Ty\u0309", 1_500_000_000),  # decomposed "ỷ"
    ("3,3 triệu", 3_300_000),
    # thousands separators
    ("1.234", 1234),
    ("1,234", 1234),
    ("1.234.567", 1_234_567),
    ("1,234,567", 1_234_567),
    ("1 234 567", 1_234_567),
    ("1\u00a0234\u00a0567", 1_234_567),
    ("1\u202f234\u202f567", 1_234_567),
    # words and symbols around the number
    ("Đã bán 1,2k", 1200),
    ("1.1M posts", 1_100_000),
    ("12.3B views", 12_300_000_000),
    ('"3,3 Tr lượt xem"', 3_300_000),
    ("3,3 Tr lượt xem", 3_300_000),
    ('"88K"', 88_000),
    ("10K+", 10_000),
    ("+1.2K", 1200),
    ("  15K posts\n", 15_000),
    ("Views: 1.234", 1234),
]

COUNT_ERRORS = [
    "",
    "   ",
    "abc",
    "K",
    "1,2",  # a decimal part without a suffix: counters are integers
    "1.5",
    "1234.0",
    "0.123",
    "1234.567",  # not a thousands grouping
    "1.2.3",
    "12.34.567",
    "1.234,5",
    "1,234.00",
    "1 234,5",
    "1 2",
    "1 234K",  # a space is never a decimal mark
    "1.234.567K",
    "-5",
    "−5K",
    ".5K",
    "5K-10K",
    "119 reactions · 1.4K shares",  # two numbers: the caller must pick one
    "x5",
    "5x",
    "1.2Kx",
    "٣",  # not an ASCII digit
    "9" * 40,
    1.5,
    float("nan"),
    float("inf"),
    True,
    None,
    b"123",
    [1],
]

MONEY = [
    ("₫1.234.567", 1_234_567),
    ("1.234.567 ₫", 1_234_567),
    ("1.234.567₫", 1_234_567),
    ("189.000đ", 189_000),
    ("189.000 VND", 189_000),
    ("189.000 VNĐ", 189_000),
    ("1,2 Tr ₫", 1_200_000),
    ("89K", 89_000),
    ("89999", 89_999),
    ("56780000.0", 56_780_000),  # a float sent as text
    ("1.234,5", 1235),  # amounts may carry a decimal part: rounded half up
    ("12,345.49", 12_345),
    (89999, 89_999),
    (56780000.0, 56_780_000),
    (0.5, 1),
    (2.5, 3),
]

MONEY_ERRORS = [
    "",
    "₫",
    "VND",
    "-5.000đ",
    "1.2.3 ₫",
    "1 234K ₫",
    "89.999 ₫ 2 sản phẩm",
    float("nan"),
    True,
    None,
]


@pytest.mark.parametrize(("value", "expected"), COUNTS)
def test_parse_count(value: str | int | float, expected: int) -> None:
    result = parse_count(value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("value", COUNT_ERRORS, ids=repr)
def test_parse_count_rejects(value: object) -> None:
    with pytest.raises(NumberFormatError, match=re.escape(repr(value)[:120])):
        parse_count(value)  # type: ignore[arg-type]


def test_number_format_error_is_a_value_error_carrying_the_input() -> None:
    with pytest.raises(ValueError) as caught:
        parse_count("n/a")
    assert isinstance(caught.value, NumberFormatError)
    assert caught.value.value == "n/a"


@pytest.mark.parametrize(("value", "expected"), MONEY)
def test_parse_money(value: str | int | float, expected: int) -> None:
    assert parse_money(value) == Money(expected, "VND")


def test_parse_money_keeps_the_given_currency() -> None:
    assert parse_money("12.50", currency="SGD") == Money(13, "SGD")


@pytest.mark.parametrize("value", MONEY_ERRORS, ids=repr)
def test_parse_money_rejects(value: object) -> None:
    with pytest.raises(NumberFormatError, match=re.escape(repr(value))):
        parse_money(value)  # type: ignore[arg-type]


def test_money_is_frozen() -> None:
    with pytest.raises(AttributeError):
        Money(1, "VND").amount = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(8_999_900_000, 89_999), ("8999900000", 89_999), (0, 0), (18_900_000_000, 189_000), (1_290_050, 13)],
)
def test_shopee_price(raw: int | str, expected: int) -> None:
    assert shopee_price(raw) == expected


@pytest.mark.parametrize("raw", [-1, "-1", "", "89.999", "8999900000.0", 8999900000.0, True, None])
def test_shopee_price_rejects(raw: object) -> None:
    with pytest.raises(NumberFormatError):
        shopee_price(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (1725850000, datetime(2024, 9, 9, 2, 46, 40, tzinfo=UTC)),  # TikTok create_time (s)
        ("1725850000", datetime(2024, 9, 9, 2, 46, 40, tzinfo=UTC)),  # TikTok Shop API (s, string)
        (1725850000.5, datetime(2024, 9, 9, 2, 46, 40, 500_000, tzinfo=UTC)),
        (1725850000000, datetime(2024, 9, 9, 2, 46, 40, tzinfo=UTC)),  # Shopee start_time (ms)
        (1763514006507, datetime(2025, 11, 19, 1, 0, 6, 507_000, tzinfo=UTC)),  # itemgetter example
        (" 1763514006507 ", datetime(2025, 11, 19, 1, 0, 6, 507_000, tzinfo=UTC)),
    ],
)
def test_to_utc(ts: int | float | str, expected: datetime) -> None:
    result = to_utc(ts)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    "ts",
    [
        0,
        -1,
        0.0,
        12345,
        5_000_000_000,
        10**11,
        10**17,
        10**400,
        float("nan"),
        float("inf"),
        "",
        "abc",
        "-1725850000",
        "1,725,850,000",
        True,
        None,
    ],
)
def test_to_utc_rejects(ts: object) -> None:
    with pytest.raises(NumberFormatError):
        to_utc(ts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("n", "en", "vi"),
    [
        (0, "0", "0"),
        (999, "999", "999"),
        (1000, "1K", "1 N"),
        (1234, "1.2K", "1,2 N"),
        (1250, "1.3K", "1,3 N"),  # half up
        (88_000, "88K", "88 N"),
        (999_949, "999.9K", "999,9 N"),
        (999_950, "1M", "1 Tr"),  # 1000.0K moves up a unit
        (3_400_000, "3.4M", "3,4 Tr"),
        (1_500_000_000, "1.5B", "1,5 Tỷ"),
        (12_300_000_000, "12.3B", "12,3 Tỷ"),
    ],
)
def test_format_count(n: int, en: str, vi: str) -> None:
    assert format_count_en(n) == en
    assert format_count_vi(n) == vi


@pytest.mark.parametrize("n", [-1, True, 1.5, "1"])
def test_format_count_rejects(n: object) -> None:
    with pytest.raises(NumberFormatError):
        format_count_en(n)  # type: ignore[arg-type]
    with pytest.raises(NumberFormatError):
        format_count_vi(n)  # type: ignore[arg-type]


# Properties

counts = st.integers(min_value=0, max_value=10**12)
thousands_separators = st.sampled_from([".", ",", " ", "\u00a0", "\u202f"])


def _unit(n: int) -> int:
    return max((u for u in (1, 10**3, 10**6, 10**9) if u <= n), default=1)


@given(counts, thousands_separators)
def test_plain_and_grouped_counts_round_trip(n: int, separator: str) -> None:
    assert parse_count(str(n)) == n
    assert parse_count(f"{n:,}".replace(",", separator)) == n
    assert parse_money(f"{n:,}".replace(",", separator) + " ₫") == Money(n, "VND")


@given(counts)
def test_display_formats_round_trip_within_half_a_tenth(n: int) -> None:
    # One decimal place of the unit, rounded: off by at most 0.05 unit (exact in integers).
    bound = _unit(n) // 20
    assert abs(parse_count(format_count_en(n)) - n) <= bound
    assert abs(parse_count(format_count_vi(n)) - n) <= bound


@given(st.integers(min_value=0, max_value=10**12))
def test_shopee_price_inverts_the_scale(n: int) -> None:
    assert shopee_price(n * 100_000) == n
    assert shopee_price(str(n * 100_000)) == n


@given(st.integers(min_value=946_684_800, max_value=4_102_444_799))
def test_seconds_and_milliseconds_agree(seconds: int) -> None:
    assert to_utc(seconds) == to_utc(seconds * 1000) == to_utc(str(seconds))


# Text made of the characters the parser cares about finds edge cases faster than st.text() alone.
number_like_text = st.text(alphabet="0123456789.,  \u00a0+-−KkMmBbNnTtrỷ₫đVD lượtxem")
anything = st.one_of(st.text(), number_like_text, st.integers(), st.floats(), st.booleans(), st.none())


@given(anything)
def test_parse_count_returns_an_int_or_raises_number_format_error(value: object) -> None:
    try:
        result = parse_count(value)  # type: ignore[arg-type]
    except NumberFormatError:
        return
    assert type(result) is int


@given(anything)
def test_parse_money_returns_money_or_raises_number_format_error(value: object) -> None:
    try:
        result = parse_money(value)  # type: ignore[arg-type]
    except NumberFormatError:
        return
    assert isinstance(result, Money)
    assert type(result.amount) is int


@given(st.one_of(st.text(), number_like_text, st.integers(), st.floats()))
def test_to_utc_returns_aware_datetime_or_raises_number_format_error(value: object) -> None:
    try:
        result = to_utc(value)  # type: ignore[arg-type]
    except NumberFormatError:
        return
    assert result.tzinfo is UTC
