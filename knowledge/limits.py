"""Bounds on what one uploaded document may cost to ingest: size once unpacked, parts, pages,
text elements, memory and time.

A DOCX is a ZIP archive: 150 KB of highly compressible XML can unpack to 30 MB and more,
and the parser builds a tree many times the size of its XML (measured: a 30 MB
``document.xml`` peaked at 660 MB and took 33 s to partition, before chunking and
embedding its 141,000 paragraphs). So, before any parser sees the file:

* ``scan_zip`` reads the archive's central directory itself, entry by entry, without
  building ``zipfile``'s index: the number of members and the sum of their declared
  unpacked sizes (ZIP64 sizes included), stopping as soon as a limit is passed;
* ``check_zip_content`` then unpacks every member through a bounded reader, counting the
  bytes that really come out (``zipfile`` stops a member at its declared size and checks
  its CRC, so a member that lies about its size is a damaged file, never a bigger one)
  and the paragraphs of a Word document, the elements its partitioner would make.

PDF pages are counted before any page is read; partitioners' elements are counted as they
come. Memory and time are bounded where no check inside the parser can: the parsing runs
in a child process (``knowledge.isolated``) with a cap on its address space and a
deadline, after which it is killed, whatever C code it is stuck in.

Every limit refused is a ``LimitExceeded`` whose message names the file, the size found,
the limit and the setting that raises it, for staff to read in the admin.
"""

from __future__ import annotations

import re
import struct
import time
import zipfile
import zlib
from dataclasses import asdict, dataclass

from knowledge.filetypes import UnsupportedFile

MB = 1024 * 1024
# How much memory reading one file may take on top of the reader process's own (about
# 200 MB with unstructured loaded). Generous for any file within the other limits: a
# 10 MB document.xml of 47,000 paragraphs grows the reader by 180 MB.
DEFAULT_PARSER_MEMORY_MB = 1024
# The central directory record (APPNOTE 4.3.12): 46 bytes, then name, extra field, comment.
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_CENTRAL_SIGNATURE = b"PK\x01\x02"
_ZIP64_EXTRA = 0x0001
_MAX32 = 0xFFFFFFFF
# Paragraph start tags of WordprocessingML (<w:p> or <w:p attr=...>, not <w:pPr>, not <w:p/>).
_WORD_PARAGRAPH = re.compile(rb"<w:p[\s>]")
_READ_CHUNK = 1 * MB


class LimitExceeded(UnsupportedFile):
    """The document is over one of the ingestion limits; the message names it and its setting."""


@dataclass(frozen=True)
class Limits:
    max_decompressed_mb: int = 50
    max_archive_members: int = 2000
    max_elements: int = 50000
    max_pdf_pages: int = 1000
    timeout_sec: float = 120
    max_memory_mb: int = DEFAULT_PARSER_MEMORY_MB

    @classmethod
    def from_settings(cls) -> Limits:
        from django.conf import settings

        return cls(
            max_decompressed_mb=settings.KNOWLEDGE_MAX_DECOMPRESSED_MB,
            max_archive_members=settings.KNOWLEDGE_MAX_ARCHIVE_MEMBERS,
            max_elements=settings.KNOWLEDGE_MAX_ELEMENTS,
            max_pdf_pages=settings.KNOWLEDGE_MAX_PDF_PAGES,
            timeout_sec=settings.KNOWLEDGE_INGEST_TIMEOUT_SEC,
            max_memory_mb=getattr(settings, "KNOWLEDGE_MAX_PARSER_MEMORY_MB", DEFAULT_PARSER_MEMORY_MB),
        )

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def max_decompressed_bytes(self) -> int:
        return self.max_decompressed_mb * MB


def _mb(size: int) -> str:
    return f"{size / MB:,.0f} MB" if size >= 10 * MB else f"{size / MB:,.1f} MB"


def too_big(name: str, size: int | None, limits: Limits) -> LimitExceeded:
    """``size`` None: the reading stopped as soon as it passed the limit."""
    found = f"{_mb(size)}" if size is not None else f"more than {limits.max_decompressed_mb} MB"
    return LimitExceeded(f"{name} expands to {found} when unpacked, over the {limits.max_decompressed_mb} MB limit "
                         f"(VOICEBOT_KNOWLEDGE_MAX_DECOMPRESSED_MB).")


def too_many_members(name: str, count: int | None, limits: Limits) -> LimitExceeded:
    found = f"{count:,}" if count is not None else f"more than {limits.max_archive_members:,}"
    return LimitExceeded(f"{name} is an archive of {found} files, over the {limits.max_archive_members} limit "
                         f"(VOICEBOT_KNOWLEDGE_MAX_ARCHIVE_MEMBERS).")


def too_many_elements(name: str, count: int | None, limits: Limits, what: str = "text elements") -> LimitExceeded:
    found = f"{count:,}" if count is not None else f"more than {limits.max_elements:,}"
    return LimitExceeded(f"{name} has {found} {what}, over the limit of {limits.max_elements} text elements "
                         f"(paragraphs, headings, table rows) per document (VOICEBOT_KNOWLEDGE_MAX_ELEMENTS); "
                         f"split it into smaller files.")


def too_many_pages(name: str, pages: int, limits: Limits) -> LimitExceeded:
    return LimitExceeded(f"{name} has {pages:,} pages, over the {limits.max_pdf_pages}-page limit "
                         f"(VOICEBOT_KNOWLEDGE_MAX_PDF_PAGES); split it into smaller files.")


def too_slow(name: str, limits: Limits, stage: str) -> LimitExceeded:
    return LimitExceeded(f"{name} took longer than the {limits.timeout_sec:g} s limit to ingest "
                         f"(VOICEBOT_KNOWLEDGE_INGEST_TIMEOUT_SEC); it was stopped {stage}. "
                         f"Split it into smaller files.")


def too_much_memory(name: str, limits: Limits, detail: str = "") -> LimitExceeded:
    return LimitExceeded(f"{name} needs more than the {limits.max_memory_mb} MB of memory allowed for reading one "
                         f"file{detail}; it is too large or built to exhaust memory. Split it into smaller files.")


def check_elements(name: str, count: int, limits: Limits, what: str = "text elements") -> None:
    if count > limits.max_elements:
        raise too_many_elements(name, count, limits, what)


def check_pdf_pages(name: str, pages: int, limits: Limits) -> None:
    if pages > limits.max_pdf_pages:
        raise too_many_pages(name, pages, limits)


class Deadline:
    """The time one document's ingestion may still take."""

    def __init__(self, limits: Limits, start: float | None = None):
        self.limits = limits
        self.end = (time.monotonic() if start is None else start) + limits.timeout_sec

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def check(self, name: str, stage: str) -> None:
        if self.remaining() <= 0:
            raise too_slow(name, self.limits, stage)


@dataclass(frozen=True)
class ZipSummary:
    names: list[str]
    members: int
    declared_bytes: int


def _damaged(reason: str) -> UnsupportedFile:
    return UnsupportedFile(f"It looks like a ZIP file but is damaged and cannot be opened ({reason}).")


def _zip64_size(extra: bytes) -> int | None:
    """The unpacked size in a ZIP64 extended-information extra field (it comes first there)."""
    position = 0
    while position + 4 <= len(extra):
        header, length = struct.unpack_from("<HH", extra, position)
        if header == _ZIP64_EXTRA and length >= 8:
            return struct.unpack_from("<Q", extra, position + 4)[0]
        position += 4 + length
    return None


def scan_zip(name: str, data: bytes, limits: Limits) -> ZipSummary:
    """Member names, count and declared unpacked size of a ZIP, from its central directory.

    Reads the directory as ``zipfile`` would (same end record, same start), but only counts:
    it stops at the first member over the count limit, so a directory of a million entries
    costs no more than one of two thousand.
    """
    import io

    handle = io.BytesIO(data)
    try:
        end = zipfile._EndRecData(handle)  # the end-of-directory record as ZipFile reads it (ZIP64 aware)
    except OSError:
        end = None
    if not end:
        raise _damaged("no central directory")
    declared_count = end[zipfile._ECD_ENTRIES_TOTAL]
    if declared_count > limits.max_archive_members:
        raise too_many_members(name, declared_count, limits)
    size_cd, offset_cd = end[zipfile._ECD_SIZE], end[zipfile._ECD_OFFSET]
    concat = end[zipfile._ECD_LOCATION] - size_cd - offset_cd
    if end[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:
        concat -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator
    start = offset_cd + concat
    if start < 0 or start + size_cd > len(data):
        raise _damaged("bad central directory offset")
    names: list[str] = []
    total = 0
    position, stop = start, start + size_cd
    while position < stop:
        if position + _CENTRAL.size > stop:
            raise _damaged("truncated central directory")
        record = _CENTRAL.unpack_from(data, position)
        if record[0] != _CENTRAL_SIGNATURE:
            raise _damaged("bad central directory entry")
        # signature, versions (4), flags, method, time, date, CRC, compressed and unpacked size, lengths...
        flags, file_size, name_len, extra_len, comment_len = record[5], record[11], record[12], record[13], record[14]
        position += _CENTRAL.size
        raw_name = data[position:position + name_len]
        extra = data[position + name_len:position + name_len + extra_len]
        position += name_len + extra_len + comment_len
        if file_size == _MAX32:
            file_size = _zip64_size(extra)
            if file_size is None:
                raise _damaged("ZIP64 size missing")
        total += file_size
        names.append(raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace"))
        if len(names) > limits.max_archive_members:
            raise too_many_members(name, None if position < stop else len(names), limits)
    if total > limits.max_decompressed_bytes:
        raise too_big(name, total, limits)
    return ZipSummary(names, len(names), total)


def check_zip_content(name: str, data: bytes, limits: Limits, count_paragraphs: bool = False) -> int:
    """Unpack every member through a bounded reader; returns the paragraphs of a Word document.

    Raises LimitExceeded when the bytes that really come out pass the size limit, or when
    the paragraphs (one partitioner element each at most) pass the element limit.
    """
    import io

    scan_zip(name, data, limits)
    total = paragraphs = 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                words = count_paragraphs and info.filename.startswith("word/") and info.filename.endswith(".xml")
                tail = b""
                with archive.open(info) as member:
                    while chunk := member.read(_READ_CHUNK):
                        total += len(chunk)
                        if total > limits.max_decompressed_bytes:
                            raise too_big(name, None, limits)
                        if words:
                            window = tail + chunk
                            paragraphs += len(_WORD_PARAGRAPH.findall(window)) - len(_WORD_PARAGRAPH.findall(tail))
                            tail = window[-8:]
                            if paragraphs > limits.max_elements:
                                raise too_many_elements(name, None, limits, "paragraphs")
    except LimitExceeded:
        raise
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, ValueError) as exc:
        # A damaged stream, a CRC that does not match (a member longer than it says), an unknown
        # compression method, an encrypted member.
        raise _damaged(f"{type(exc).__name__}: {exc}") from None
    return paragraphs
