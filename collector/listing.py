"""Plain-text listings for `status`, `targets list` and `once` that read well at any width and in a pipe.

A listing has short cells (names, outcomes, times) and, per row, longer detail lines (an error message, a
URL, the values found). When the cells fit the width they form aligned columns; otherwise each row becomes
a block of `label: value` pairs that are never split. Detail lines always stand on their own: whole in a
pipe, so grep finds a message in one piece; wrapped at spaces on a terminal.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

GAP = "  "
INDENT = "    "


@dataclass(frozen=True, slots=True)
class Row:
    cells: tuple[str, ...]
    details: tuple[str, ...] = ()


@dataclass(slots=True)
class Listing:
    headers: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)

    def add(self, *cells: str, details: Sequence[str] = ()) -> None:
        if len(cells) != len(self.headers):
            raise ValueError(f"{len(cells)} cells for {len(self.headers)} columns")
        self.rows.append(Row(cells, tuple(d for d in details if d)))


def render(listing: Listing, width: int, *, wrap: bool) -> list[str]:
    """The listing as lines of at most `width` characters (detail lines too when `wrap`)."""
    widths = [
        max([len(header), *(len(row.cells[i]) for row in listing.rows)])
        for i, header in enumerate(listing.headers)
    ]
    if sum(widths) + len(GAP) * (len(widths) - 1) <= width:
        return _table(listing, widths, width, wrap)
    return _blocks(listing, width, wrap)


def _table(listing: Listing, widths: list[int], width: int, wrap: bool) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return GAP.join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    lines = [line([h.upper() for h in listing.headers])]
    for row in listing.rows:
        lines.append(line(row.cells))
        lines.extend(_details(row, width, wrap))
    return lines


def _blocks(listing: Listing, width: int, wrap: bool) -> list[str]:
    lines: list[str] = []
    for row in listing.rows:
        if lines:
            lines.append("")
        lines.append(row.cells[0])
        pairs = [f"{h}: {c}" for h, c in zip(listing.headers[1:], row.cells[1:], strict=True) if c]
        current = ""
        for pair in pairs:
            if current and len(INDENT + current + GAP + pair) > width:
                lines.append(INDENT + current)
                current = ""
            current = f"{current}{GAP}{pair}" if current else pair
        if current:
            lines.append(INDENT + current)
        lines.extend(_details(row, width, wrap))
    return lines


def _details(row: Row, width: int, wrap: bool) -> list[str]:
    if not wrap:
        return [INDENT + d for d in row.details]
    # URLs and long tokens stay whole: a broken URL cannot be copied.
    wrapper = textwrap.TextWrapper(
        width=max(width, 20),
        initial_indent=INDENT,
        subsequent_indent=INDENT,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [line for d in row.details for line in wrapper.wrap(d)]
