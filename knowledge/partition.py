"""File bytes -> blocks of text with their page and whether they are headings.

DOCX, HTML, Markdown and plain text go through ``unstructured``'s
partitioners (headings from styles and markup, text classified by its
heuristics). PDF is read with pdfminer.six directly: unstructured's own
``partition_pdf`` imports ``unstructured_inference`` (PyTorch, CUDA) even for
its pdfminer-based "fast" strategy; the same library reading the same text
layer, with headings found by font size, keeps the install torch-free. CSV
rows become "column: value" lines, which answer "how much is X" far better
than unstructured's one flattened table.

unstructured's text heuristics ask spaCy for sentences and part-of-speech
tags and download ``en_core_web_sm`` from GitHub on first use (impossible
offline). ``offline_nlp()`` gives them a blank English pipeline with a
rule-based sentencizer instead: no download, no third-party model.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePath
from statistics import median

from knowledge.filetypes import UnsupportedFile, decode_text

os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SKIPPED_CATEGORIES = {"PageBreak", "Header", "Footer", "PageNumber", "Image", "FigureCaption"}
SENTENCE_END = re.compile(r"[.!?;,]$")
MAX_HEADING_WORDS = 14


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


def partition_pdf(data: bytes) -> tuple[list[Block], int]:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTChar, LTTextContainer, LTTextLine
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect
    from pdfminer.pdfparser import PDFSyntaxError
    from pdfminer.psparser import PSException

    blocks, pages = [], 0
    try:
        for page_number, layout in enumerate(extract_pages(io.BytesIO(data), laparams=LAParams()), start=1):
            pages = page_number
            boxes, page_sizes = [], []
            for box in layout:
                if not isinstance(box, LTTextContainer):
                    continue
                text = re.sub(r"\s+", " ", box.get_text()).strip()
                sizes = [ch.size for line in box if isinstance(line, LTTextLine) for ch in line if isinstance(ch, LTChar)]
                if text:
                    boxes.append((text, median(sizes) if sizes else 0.0))
                    page_sizes.extend(sizes)
            # The body size is the size of most characters on the page, not of most boxes.
            body = median(page_sizes) if page_sizes else 0.0
            for text, size in boxes:
                heading = bool(body) and size >= body * 1.15 and looks_like_heading(text)
                blocks.append(Block(text, page_number, heading))
    except (PDFPasswordIncorrect, PDFEncryptionError):
        raise DocumentUnreadable("The PDF is password-protected; upload an unprotected copy.") from None
    except (PDFSyntaxError, PSException, ValueError, TypeError, KeyError, AttributeError, AssertionError) as exc:
        raise DocumentUnreadable(f"The PDF is damaged and cannot be read ({type(exc).__name__}: {exc}).") from None
    if pages == 0:
        raise DocumentUnreadable("The PDF is damaged: it has no readable pages.")
    if not blocks:
        raise DocumentUnreadable(
            f"The PDF has {pages} page(s) but no text layer (a scan?); text recognition (OCR) is not supported."
        )
    return blocks, pages


def partition_docx(data: bytes) -> tuple[list[Block], int]:
    offline_nlp()
    from unstructured.partition.docx import partition_docx as unstructured_docx

    try:
        elements = unstructured_docx(file=io.BytesIO(data), include_page_breaks=False)
    except Exception as exc:  # python-docx raises a zoo of XML/KeyError/ValueError on damaged files
        raise DocumentUnreadable(f"The Word document is damaged and cannot be read ({type(exc).__name__}: {exc}).") from None
    blocks = from_elements(elements)
    return blocks, max((b.page for b in blocks), default=1)


def partition_text_like(file_type: str, text: str) -> tuple[list[Block], int]:
    offline_nlp()
    if file_type == "html":
        from unstructured.partition.html import partition_html

        return from_elements(partition_html(text=text)), 1
    if file_type == "md":
        from unstructured.partition.md import partition_md

        return from_elements(partition_md(text=text)), 1
    from unstructured.partition.text import partition_text

    # A form feed starts a new page (as in pdftotext output).
    pages = text.split("\f")
    blocks = []
    for number, page_text in enumerate(pages, start=1):
        if page_text.strip():
            blocks.extend(from_elements(partition_text(text=page_text), default_page=number))
    return blocks, len(pages)


def partition_csv(text: str, name: str) -> tuple[list[Block], int]:
    sample = text[:8192]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = [row for row in csv.reader(io.StringIO(text), dialect) if any(cell.strip() for cell in row)]
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


def partition(file_type: str, name: str, data: bytes) -> tuple[list[Block], int]:
    """(blocks in reading order, page count) of a file already typed by ``filetypes.detect``."""
    if file_type == "pdf":
        blocks, pages = partition_pdf(data)
    elif file_type == "docx":
        blocks, pages = partition_docx(data)
    else:
        text = decode_text(data)
        if text is None:
            raise UnsupportedFile("Its content is not text.")
        if file_type == "csv":
            blocks, pages = partition_csv(text, name)
        else:
            blocks, pages = partition_text_like(file_type, text)
    if not blocks:
        raise DocumentUnreadable("No text found in the file.")
    return settle_headings(blocks), pages
