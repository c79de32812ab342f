"""What an uploaded file is, judged by its bytes, and whether we can read it.

The name's extension only chooses among text formats (CSV, Markdown, HTML,
plain text); a binary format must be what its name says, so a program or an
image renamed ``prices.pdf`` is refused with a message naming what it is.
"""

from __future__ import annotations

from pathlib import PurePath

from django.conf import settings

SUPPORTED = ("pdf", "docx", "txt", "csv", "md", "html")
EXTENSIONS = {
    ".pdf": "pdf", ".docx": "docx", ".txt": "txt", ".text": "txt", ".csv": "csv",
    ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html",
}
TEXT_TYPES = {"txt", "csv", "md", "html"}
LABELS = {"pdf": "a PDF", "docx": "a Word (DOCX) document", "txt": "plain text", "csv": "CSV",
          "md": "Markdown", "html": "HTML"}

# Formats we recognise but do not read, by their first bytes.
KNOWN_BINARIES = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a Linux program"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office file (.doc/.xls); save it as DOCX or PDF"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"ID3", "an MP3 audio file"),
    (b"RIFF", "a RIFF (WAV/AVI/WebP) file"),
    (b"OggS", "an Ogg audio file"),
    (b"{\\rtf", "an RTF document; save it as DOCX or PDF"),
]


class UnsupportedFile(ValueError):
    """The file cannot be ingested; the message says why in words staff can act on."""


def max_upload_bytes() -> int:
    return settings.KNOWLEDGE_MAX_UPLOAD_MB * 1024 * 1024


def decode_text(data: bytes) -> str | None:
    """The text of ``data`` if it is text (UTF-8/16 or Windows-1252), else None."""
    for bom, encoding in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                return None
    if b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            return None
    controls = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\t\n\r\f")
    return None if controls > len(text[:65536]) * 0.01 else text


def sniff(data: bytes, name: str = "The file") -> str:
    """The family ``data`` belongs to: "pdf", "docx", "text", or an UnsupportedFile naming what it is.

    A ZIP (DOCX, XLSX, PPTX, ODT...) is judged by its central directory, read with the
    archive limits (``limits.scan_zip``): too many members or too many megabytes once
    unpacked are refused here, before any parser opens it.
    """
    from knowledge.limits import Limits, scan_zip

    head = data[:1024]
    if head.lstrip()[:5] == b"%PDF-":
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        names = set(scan_zip(name, data, Limits.from_settings()).names)
        if "word/document.xml" in names:
            return "docx"
        if "xl/workbook.xml" in names:
            raise UnsupportedFile("It is an Excel workbook (XLSX), which is not supported; export it as CSV.")
        if "ppt/presentation.xml" in names:
            raise UnsupportedFile("It is a PowerPoint file (PPTX), which is not supported; export it as PDF.")
        raise UnsupportedFile("It is a ZIP archive; upload the documents inside it one by one.")
    for magic, label in KNOWN_BINARIES:
        if head.startswith(magic):
            raise UnsupportedFile(f"It is {label}, which is not supported.")
    if decode_text(data) is None:
        raise UnsupportedFile("Its content is binary data of an unknown kind, not a supported document.")
    return "text"


def detect(name: str, data: bytes) -> str:
    """The file type to ingest ``data`` as (one of SUPPORTED), or UnsupportedFile saying why not."""
    if not data.strip():
        raise UnsupportedFile("The file is empty.")
    suffix = PurePath(name).suffix.lower()
    claimed = EXTENSIONS.get(suffix)
    if claimed is None:
        allowed = ", ".join(sorted({s for s in EXTENSIONS}))
        raise UnsupportedFile(f"Files ending in {suffix or '(no extension)'!r} are not supported; use one of {allowed}.")
    family = sniff(data, PurePath(name).name or "The file")
    if family in ("pdf", "docx"):
        if claimed != family:
            raise UnsupportedFile(f"The name says {LABELS[claimed]} but the content is {LABELS[family]}; "
                                  f"rename it with the right extension.")
        return family
    if claimed not in TEXT_TYPES:
        raise UnsupportedFile(f"The name says {LABELS[claimed]} but the content is plain text, not {LABELS[claimed]}.")
    return claimed
