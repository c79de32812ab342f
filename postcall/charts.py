"""A small inline SVG bar chart (no JavaScript), for the report page in admin."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString


def hours_bar_chart(counts: list[int], width: int = 480, height: int = 140) -> SafeString:
    """Calls per local hour, 0-23: bars with their counts, an hour axis labelled every three hours."""
    counts = [int(n) for n in counts] + [0] * (24 - len(counts))
    top = max(counts) or 1
    slot = width / 24
    plot = height - 32  # room for the counts above and the hours below

    def f(x: float) -> str:
        return f"{x:.1f}"

    top_y = 14
    bars = format_html_join(
        "", '<rect x="{}" y="{}" width="{}" height="{}" fill="#417690"><title>{}:00 – {} calls</title></rect>',
        ((f(h * slot + 1), f(top_y + plot - n / top * plot), f(slot - 2), f(n / top * plot), h, n)
         for h, n in enumerate(counts)))
    values = format_html_join(
        "", '<text x="{}" y="{}" font-size="9" text-anchor="middle">{}</text>',
        ((f(h * slot + slot / 2), f(top_y + plot - n / top * plot - 2), n) for h, n in enumerate(counts) if n))
    axis = format_html('<line x1="0" y1="{}" x2="{}" y2="{}" stroke="#999"/>', f(top_y + plot), width, f(top_y + plot))
    labels = format_html_join(
        "", '<text x="{}" y="{}" font-size="10" text-anchor="middle">{}:00</text>',
        ((f(h * slot + slot / 2), height - 4, h) for h in range(0, 24, 3)))
    return format_html('<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" role="img" '
                       'aria-label="Calls by hour">{}{}{}{}</svg>', width, height, bars, values, axis, labels)
