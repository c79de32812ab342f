"""CSV exports that spreadsheets open safely: streamed line by line, UTF-8 with a BOM (Excel),
free text never run as a formula. Used by the leads export and the campaign results export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run such a cell as a formula


def text_cell(value: str) -> str:
    """Free text (a name, a note) that a spreadsheet shows as text, never runs as a formula."""
    return f"'{value}" if value.startswith(FORMULA_START) else value


def csv_lines(header: list[str], rows: Iterable[list]) -> Iterator[str]:
    """``header`` and each of ``rows`` as CSV text, one line at a time (the first with a BOM)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(row) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row)
        return buffer.getvalue()

    yield "\ufeff" + line(header)
    for row in rows:
        yield line(row)
