"""Small server-rendered SVG bar charts of items and relevant items per day. Pure.

In: a series ``[{"day": "YYYY-MM-DD", "items": n, "relevant": r}, …]``. Out: an inline
``<svg>`` as `Markup` (bars for items, relevant items drawn over them, a ``<title>`` tooltip per
day). No script, no style attributes (the page's Content-Security-Policy allows neither), no
resource fetched at view time. Every text put in is escaped.
"""

from __future__ import annotations

from datetime import date, timedelta
from html import escape

from markupsafe import Markup

ITEMS_COLOUR = "#b8c4d6"
RELEVANT_COLOUR = "#c2410c"


def day_series(first_day: date, last_day: date, counts: dict[str, list[int]]) -> list[dict]:
    """Every day from `first_day` to `last_day`, with 0 for days without items."""
    out = []
    day = first_day
    while day <= last_day:
        items, relevant = counts.get(day.isoformat(), (0, 0))
        out.append({"day": day.isoformat(), "items": items, "relevant": relevant})
        day += timedelta(days=1)
    return out


def bar_chart(series: list[dict], *, width: int = 600, height: int = 120,
              label: str = "items per day", axis: bool = True) -> Markup:
    """Bars per day; the tallest day fills the height. `axis` adds the scale and first/last day."""
    count = max(len(series), 1)
    top = max([s["items"] for s in series] + [1])
    pad_left, pad_bottom = (34, 16) if axis else (0, 0)
    plot_w, plot_h = width - pad_left, height - pad_bottom
    step = plot_w / count
    bar = max(step * 0.8, 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}">',
        f"<title>{escape(label)}</title>",
    ]
    for index, point in enumerate(series):
        x = pad_left + index * step + (step - bar) / 2
        tip = escape(f"{point['day']}: {point['items']} items, {point['relevant']} relevant")
        parts.append(f"<g><title>{tip}</title>")
        for value, colour in ((point["items"], ITEMS_COLOUR), (point["relevant"], RELEVANT_COLOUR)):
            if value:
                h = max(plot_h * value / top, 1.0)
                parts.append(f'<rect x="{x:.1f}" y="{plot_h - h:.1f}" width="{bar:.1f}" '
                             f'height="{h:.1f}" fill="{colour}"/>')
        parts.append("</g>")
    if not axis:
        parts.append(f'<line x1="0" y1="{plot_h - 0.5}" x2="{width}" y2="{plot_h - 0.5}" '
                     'stroke="#ccd3de" stroke-width="1"/>')
    if axis and series:
        parts.append(f'<line x1="{pad_left}" y1="{plot_h}" x2="{width}" y2="{plot_h}" '
                     'stroke="#888" stroke-width="1"/>')
        parts.append(f'<text x="{pad_left - 4}" y="10" font-size="10" text-anchor="end" '
                     f'fill="#555">{top}</text>')
        parts.append(f'<text x="{pad_left - 4}" y="{plot_h}" font-size="10" '
                     'text-anchor="end" fill="#555">0</text>')
        parts.append(f'<text x="{pad_left}" y="{height - 3}" font-size="10" '
                     f'fill="#555">{escape(series[0]["day"])}</text>')
        parts.append(f'<text x="{width}" y="{height - 3}" font-size="10" text-anchor="end" '
                     f'fill="#555">{escape(series[-1]["day"])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
