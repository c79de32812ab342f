"""File bytes -> blocks of text with their page and whether they are headings.

DOCX, HTML, Markdown and plain text go through ``unstructured``'s
partitioners (headings from styles and markup, text classified by its
heuristics). PDF does not: unstructured's own ``partition_pdf`` imports
``unstructured_inference`` (PyTorch, CUDA) even for its pdfminer-based "fast"
strategy. PDFs are read with PDFium (pypdfium2, a C library in the wheel, no
torch) instead, 5 to 15 times faster than pdfminer.six: its text layer gives
lines and per-character font sizes, lines of one size and normal spacing make
a block (as pdfminer's layout analysis groups them), and a block clearly
bigger than the page's body text is a heading. CSV rows become "column:
value" lines, which answer "how much is X" far better than unstructured's one
flattened table.

unstructured's text heuristics ask spaCy for sentences and part-of-speech
tags and download ``en_core_web_sm`` from GitHub on first use (impossible
offline). ``offline_nlp()`` gives them a blank English pipeline with a
rule-based sentencizer instead: no download, no third-party model.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby
from pathlib import PurePath
from statistics import median

from knowledge.filetypes import UnsupportedFile, decode_text
from knowledge.limits import Limits, check_elements, check_pdf_pages, check_zip_content, too_many_elements

os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SKIPPED_CATEGORIES = {"PageBreak", "Header", "Footer", "PageNumber", "Image", "FigureCaption"}
SENTENCE_END = re.compile(r"[.!?;,]$")
MAX_HEADING_WORDS = 14
# unstructured runs langdetect over every document by default (a third of the time a text page
# takes); nothing here reads the language metadata, and [""] is its documented "skip".
NO_LANGUAGE_DETECTION = [""]
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffe\uffff]")
# FPDF_GetLastError() codes when a PDF does not open (fpdfview.h); 4 and 5 (password,
# security handler) mean "protected".
PDFIUM_ERRORS = {1: "unknown error", 2: "file not found or cannot be opened", 3: "not a PDF or corrupted",
                 6: "page not found or content error"}


class DocumentUnreadable(ValueError):
    """The file has the right type but its content cannot be read; the message says why."""


@dataclass(frozen=True)
class Block:
    text: str
    page: int
    heading: bool = False


@lru_cache(maxsize=1)
def offline_nlp():
    """Point unstructured's spaCy hook at a blank English pipeline (sentencizer only)."""
    import spacy
    import unstructured.nlp.tokenize as tokenize

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    tokenize._get_nlp = lambda: nlp  # unstructured 0.27 loads its model only through this function
    return nlp


def looks_like_heading(text: str) -> bool:
    return len(text.split()) <= MAX_HEADING_WORDS and not SENTENCE_END.search(text)


def from_elements(elements, default_page: int = 1) -> list[Block]:
    blocks = []
    for element in elements:
        category = getattr(element, "category", type(element).__name__)
        text = (element.text or "").strip()
        if not text or category in SKIPPED_CATEGORIES:
            continue
        page = element.metadata.page_number or default_page
        blocks.append(Block(text, page, heading=category == "Title" and looks_like_heading(text)))
    return blocks


# PDFium is not thread-safe (not even across documents); one PDF at a time per process.
_PDFIUM_LOCK = threading.Lock()
# Lines of one block: a gap up to half a line's height (pdfminer's default line_margin)...
LINE_MARGIN = 0.5
# ...and font sizes within 10 % (a heading is >= 15 % bigger than the body).
SAME_SIZE = 1.1
HEADING_SIZE = 1.15
PDF_PROTECTED = "The PDF is password-protected; upload an unprotected copy."


@dataclass
class _Line:
    text: str
    sizes: list[float]  # of each character but spaces
    size: float  # their median
    left: float
    right: float
    bottom: float
    top: float
    hyphenated: bool  # ends with a hyphen that PDFium joined to the next line's word


def _same_block(above: _Line, below: _Line) -> bool:
    """pdfminer's grouping of lines into boxes: same size, close below, same column."""
    if max(above.size, below.size) > SAME_SIZE * min(above.size, below.size):
        return False
    margin = LINE_MARGIN * max(above.top - above.bottom, below.top - below.bottom)
    return -margin <= above.bottom - below.top <= margin and below.left < above.right and above.left < below.right


@lru_cache(maxsize=1)
def _pdfium():
    import ctypes

    import pypdfium2.raw as pdfium  # importing pypdfium2 initialises the library once per process

    # FPDFText_GetTextObject with a plain address back: consecutive characters of one text
    # object share font and matrix, so sizes are read once per run, not once per character.
    text_object = ctypes.CFUNCTYPE(ctypes.c_void_p, pdfium.FPDF_TEXTPAGE, ctypes.c_int)(
        ctypes.cast(pdfium.FPDFText_GetTextObject, ctypes.c_void_p).value)
    return pdfium, text_object


def _page_text(pdfium, text_page, count: int) -> str:
    """The page's characters, one per character index."""
    import ctypes
    from codecs import decode

    buffer = (ctypes.c_ushort * (count + 1))()
    written = pdfium.FPDFText_GetText(text_page, 0, count, buffer)
    text = decode(memoryview(buffer)[:max(written - 1, 0)], "utf-16-le", "replace")
    if len(text) == count:
        return text
    # Characters outside the BMP (surrogate pairs) or ones PDFium leaves out shift the text:
    # read them one by one instead.
    codes = (pdfium.FPDFText_GetUnicode(text_page, i) for i in range(count))
    return "".join(chr(c) if c < 0xD800 or 0xE000 <= c <= 0x10FFFF else "\ufffd" for c in codes)


def _page_lines(pdfium, text_object, text_page) -> list[_Line]:
    """Lines of text in PDFium's reading order, with their font size per character and their box.

    PDFium ends a line with generated "\\r\\n"; a line that ends with a hyphen it joins to the
    next word has no line break, its hyphen reads U+0002.
    """
    count = pdfium.FPDFText_CountChars(text_page)
    if count <= 0:
        return []
    text = _page_text(pdfium, text_page, count)
    objects = [text_object(text_page, i) for i in range(count)]
    box, matrix = pdfium.FS_RECTF(), pdfium.FS_MATRIX()
    lines: list[_Line] = []
    parts: list[str] = []
    sizes: list[float] = []
    left = bottom = float("inf")
    right = top = float("-inf")

    def end_line(hyphenated: bool = False) -> None:
        nonlocal left, right, bottom, top
        line = CONTROL_CHARS.sub("", "".join(parts).replace("\x02", "-"))
        line = re.sub(r"\s+", " ", line).strip()
        if line and sizes:
            lines.append(_Line(line, sizes[:], median(sizes), left, right, bottom, top, hyphenated))
        parts.clear()
        sizes.clear()
        left = bottom = float("inf")
        right = top = float("-inf")

    start = 0
    for obj, run in groupby(objects):
        end = start + sum(1 for _ in run)
        chunk = text[start:end]
        if obj is None:  # generated by PDFium: a line break or a space between words
            if "\n" in chunk or "\r" in chunk:
                end_line()
            else:
                parts.append(chunk)
        else:
            stripped = chunk.strip()
            if stripped:
                first = start + len(chunk) - len(chunk.lstrip())
                last = start + len(chunk.rstrip()) - 1
                pdfium.FPDFText_GetLooseCharBox(text_page, first, box)
                run_left, run_top, run_bottom = box.left, box.top, box.bottom
                pdfium.FPDFText_GetLooseCharBox(text_page, last, box)
                run_right, run_top, run_bottom = box.right, max(run_top, box.top), min(run_bottom, box.bottom)
                if sizes and (run_top < bottom or run_bottom > top):
                    end_line()  # a new baseline PDFium did not mark
                # FPDFText_GetFontSize is the size set by Tf; the text matrix (with the page's
                # transformations) scales it, as some producers write "1 Tf" and a scaled Tm.
                pdfium.FPDFText_GetMatrix(text_page, first, matrix)
                size = pdfium.FPDFText_GetFontSize(text_page, first) * math.hypot(matrix.c, matrix.d)
                sizes.extend([size] * len("".join(stripped.split())))
                left, right = min(left, run_left), max(right, run_right)
                bottom, top = min(bottom, run_bottom), max(top, run_top)
            parts.append(chunk)
            if chunk.endswith("\x02"):
                end_line(hyphenated=True)
        start = end
    end_line()
    return lines


def _page_blocks(lines: list[_Line], page_number: int) -> list[Block]:
    groups: list[list[_Line]] = []
    for line in lines:
        if groups and _same_block(groups[-1][-1], line):
            groups[-1].append(line)
        else:
            groups.append([line])
    # The body size is the size of most characters on the page, not of most blocks.
    body = median(size for line in lines for size in line.sizes) if lines else 0.0
    blocks = []
    for group in groups:
        text = "".join(line.text + ("" if line.hyphenated else " ") for line in group).strip()
        size = median(size for line in group for size in line.sizes)
        heading = bool(body) and size >= body * HEADING_SIZE and looks_like_heading(text)
        blocks.append(Block(text, page_number, heading))
    return blocks


def _limits(limits: Limits | None) -> Limits:
    return limits if limits is not None else Limits.from_settings()


def partition_pdf(data: bytes, limits: Limits | None = None, name: str = "The PDF") -> tuple[list[Block], int]:
    """Blocks and page count of a PDF; its pages are counted (and limited) before any is read."""
    limits = _limits(limits)
    pdfium, text_object = _pdfium()
    data = bytes(data)  # PDFium reads the buffer until the document is closed: keep a reference
    blocks = []
    with _PDFIUM_LOCK, ExitStack() as close:
        document = pdfium.FPDF_LoadMemDocument64(data, len(data), None)
        if not document:
            error = pdfium.FPDF_GetLastError()
            if error in (pdfium.FPDF_ERR_PASSWORD, pdfium.FPDF_ERR_SECURITY):
                raise DocumentUnreadable(PDF_PROTECTED)
            reason = PDFIUM_ERRORS.get(error, f"error {error}")
            raise DocumentUnreadable(f"The PDF is damaged and cannot be read (PDFium: {reason}).")
        close.callback(pdfium.FPDF_CloseDocument, document)
        pages = pdfium.FPDF_GetPageCount(document)
        if pages <= 0:
            raise DocumentUnreadable("The PDF is damaged: it has no readable pages.")
        check_pdf_pages(name, pages, limits)
        for index in range(pages):
            with ExitStack() as close_page:
                page = pdfium.FPDF_LoadPage(document, index)
                if not page:
                    raise DocumentUnreadable(f"The PDF is damaged: page {index + 1} cannot be read.")
                close_page.callback(pdfium.FPDF_ClosePage, page)
                text_page = pdfium.FPDFText_LoadPage(page)
                if not text_page:
                    raise DocumentUnreadable(f"The PDF is damaged: page {index + 1} cannot be read.")
                close_page.callback(pdfium.FPDFText_ClosePage, text_page)
                blocks.extend(_page_blocks(_page_lines(pdfium, text_object, text_page), index + 1))
                if len(blocks) > limits.max_elements:  # counted page by page: stop at the first page over
                    raise too_many_elements(name, None, limits, "text blocks")
    if not blocks:
        raise DocumentUnreadable(
            f"The PDF has {pages} page(s) but no text layer (a scan?); text recognition (OCR) is not supported."
        )
    return blocks, pages


def partition_docx(data: bytes, limits: Limits | None = None, name: str = "The Word document"
                   ) -> tuple[list[Block], int]:
    """Blocks of a DOCX; the archive is unpacked once through the limits before the parser opens it."""
    limits = _limits(limits)
    check_zip_content(name, data, limits, count_paragraphs=True)
    offline_nlp()
    from unstructured.partition.docx import partition_docx as unstructured_docx

    try:
        elements = unstructured_docx(file=io.BytesIO(data), include_page_breaks=False, languages=NO_LANGUAGE_DETECTION)
    except Exception as exc:  # python-docx raises a zoo of XML/KeyError/ValueError on damaged files
        raise DocumentUnreadable(f"The Word document is damaged and cannot be read ({type(exc).__name__}: {exc}).") from None
    check_elements(name, len(elements), limits)
    blocks = from_elements(elements)
    return blocks, max((b.page for b in blocks), default=1)


def partition_text_like(file_type: str, text: str, limits: Limits | None = None,
                        name: str = "The file") -> tuple[list[Block], int]:
    limits = _limits(limits)
    offline_nlp()
    if file_type in ("html", "md"):
        if file_type == "html":
            from unstructured.partition.html import partition_html as partition_markup
        else:
            from unstructured.partition.md import partition_md as partition_markup
        elements = partition_markup(text=text, languages=NO_LANGUAGE_DETECTION)
        check_elements(name, len(elements), limits)
        return from_elements(elements), 1
    from unstructured.partition.text import partition_text

    # A form feed starts a new page (as in pdftotext output).
    pages = text.split("\f")
    blocks = []
    elements = 0
    for number, page_text in enumerate(pages, start=1):
        if page_text.strip():
            page_elements = partition_text(text=page_text, languages=NO_LANGUAGE_DETECTION)
            elements += len(page_elements)
            if elements > limits.max_elements:
                raise too_many_elements(name, None if number < len(pages) else elements, limits)
            blocks.extend(from_elements(page_elements, default_page=number))
    return blocks, len(pages)


def partition_csv(text: str, name: str, limits: Limits | None = None) -> tuple[list[Block], int]:
    limits = _limits(limits)
    sample = text[:8192]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = []
    for row in csv.reader(io.StringIO(text), dialect):
        if any(cell.strip() for cell in row):
            rows.append(row)
            if len(rows) > limits.max_elements + 1:  # + the header
                raise too_many_elements(PurePath(name).name or "The file", None, limits, "rows")
    if not rows:
        raise DocumentUnreadable("The CSV file has no rows.")
    header = [cell.strip() for cell in rows[0]]
    try:
        has_header = len(rows) > 1 and csv.Sniffer().has_header(sample)
    except csv.Error:
        has_header = False
    body = rows[1:] if has_header else rows
    title = PurePath(name).stem.replace("_", " ").replace("-", " ").strip() or "Table"
    blocks = [Block(title, 1, heading=True)]
    for row in body:
        if has_header:
            cells = [f"{h}: {v.strip()}" for h, v in zip(header, row) if v.strip()]
        else:
            cells = [v.strip() for v in row if v.strip()]
        blocks.append(Block("; ".join(cells) + ".", 1))
    return blocks, 1


def settle_headings(blocks: list[Block]) -> list[Block]:
    """Headings that head nothing become text: a run of short lines is a list, not titles.

    A heading directly under another one joins it ("Prices > Hair"); a run of
    three or more keeps only its last as the heading.
    """
    settled: list[Block] = []
    run: list[Block] = []
    for block in [*blocks, None]:
        if block is not None and block.heading:
            run.append(block)
            continue
        if run:
            if block is None:
                settled.extend(Block(b.text, b.page) for b in run)
            elif len(run) == 2:
                settled.append(Block(f"{run[0].text} > {run[1].text}", run[1].page, heading=True))
            else:
                settled.extend(Block(b.text, b.page) for b in run[:-1])
                settled.append(run[-1])
            run = []
        if block is not None:
            settled.append(block)
    return settled


def partition(file_type: str, name: str, data: bytes, limits: Limits | None = None) -> tuple[list[Block], int]:
    """(blocks in reading order, page count) of a file already typed by ``filetypes.detect``.

    In this process: ``knowledge.isolated.partition_isolated`` runs it in a child process
    that bounds its memory and time, as ingestion does.
    """
    limits = _limits(limits)
    label = PurePath(name).name or "The file"
    if file_type == "pdf":
        blocks, pages = partition_pdf(data, limits, label)
    elif file_type == "docx":
        blocks, pages = partition_docx(data, limits, label)
    else:
        text = decode_text(data)
        if text is None:
            raise UnsupportedFile("Its content is not text.")
        if file_type == "csv":
            blocks, pages = partition_csv(text, name, limits)
        else:
            blocks, pages = partition_text_like(file_type, text, limits, label)
    if not blocks:
        raise DocumentUnreadable("No text found in the file.")
    return settle_headings(blocks), pages
