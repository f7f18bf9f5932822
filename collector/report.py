"""`collector report` and the scoreboard share this: one campaign's rollup, as configured, rendered."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from collector.campaign import Rollup, Window, load_rollup
from collector.campaign_totals import as_dict
from collector.config import Config
from collector.report_format import Labels
from collector.report_render import render_csv, render_html, render_json, render_text


async def read_rollup(
    engine: AsyncEngine,
    config: Config,
    campaign: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    series: bool = False,
) -> Rollup:
    """The campaign's rollup over its configured window, narrowed by `since`/`until` when given
    (`series`: also what the charts draw)."""
    declared = config.campaigns.get(campaign)
    window = Window(
        since or (declared.start if declared else None), until or (declared.end if declared else None)
    )
    return await load_rollup(
        engine,
        campaign,
        window,
        title=declared.title if declared else None,
        goals=declared.goals if declared else None,
        now=now,
        series=series,
    )


def render(rollup: Rollup, fmt: str, lang: str) -> str:
    doc, labels = as_dict(rollup), Labels(lang)
    if fmt == "json":
        return render_json(doc)
    if fmt == "csv":
        return render_csv(doc)
    if fmt == "html":
        from collector.charts import campaign_charts

        return render_html(doc, labels, campaign_charts(rollup, labels))
    return render_text(doc, labels)


def write_charts(rollup: Rollup, lang: str, directory: Path) -> list[Path]:
    from collector.charts import campaign_charts

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, png in campaign_charts(rollup, Labels(lang)).items():
        path = directory / f"{rollup.campaign}-{stem}.png"
        path.write_bytes(png)
        written.append(path)
    return written
