"""HTTP range requests (RFC 9110, section 14) over a file of known size: what to send.

    parse_range("bytes=0-99", size=1000)   -> ByteRange(0, 99)
    parse_range("bytes=-100", size=1000)   -> ByteRange(900, 999)   (the last 100 bytes)
    parse_range("bytes=900-", size=1000)   -> ByteRange(900, 999)
    parse_range("bytes=2000-", size=1000)  -> raises RangeNotSatisfiable (answer 416)
    parse_range("lines=1-2", size=1000)    -> None                  (ignored: the whole file, 200)

Only a single range is served; a header that is malformed, names another unit or asks
for several ranges is ignored (the whole file, 200), as the RFC allows. A range that is
well formed but starts past the end of the file (or asks for the last 0 bytes, or any
byte of an empty file) cannot be satisfied: 416 with ``Content-Range: bytes */size``.

``RangeFile`` reads one range of an open file, block by block, for a streaming response.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# first-pos "-" [ last-pos ]  /  "-" suffix-length; digits only (no sign, no spaces inside).
_RANGE_RE = re.compile(r"^(?:(\d+)-(\d*)|-(\d+))$")
MAX_HEADER_CHARS = 200  # longer headers are ignored (and huge digit strings never reach int())


class RangeNotSatisfiable(Exception):
    """The range is valid but no byte of it is in the file (answer 416)."""

    def __init__(self, size: int):
        super().__init__(f"The requested range is not satisfiable: the file has {size} bytes.")
        self.size = size


@dataclass(frozen=True)
class ByteRange:
    start: int  # first byte, inclusive
    end: int  # last byte, inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range ``header`` asks for in a file of ``size`` bytes; None to send it all."""
    if not header or len(header) > MAX_HEADER_CHARS:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = [part.strip() for part in spec.split(",")]
    specs = [part for part in specs if part]  # "bytes=0-1," : empty list elements are allowed
    if len(specs) != 1:
        return None  # none, or several ranges: ignored (no multipart/byteranges)
    match = _RANGE_RE.match(specs[0])
    if match is None:
        return None
    first, last, suffix = match.groups()
    if suffix is not None:
        length = int(suffix)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(max(0, size - length), size - 1)
    start = int(first)
    end = int(last) if last else None
    if end is not None and end < start:
        return None  # invalid (last-pos before first-pos): ignored
    if start >= size:
        raise RangeNotSatisfiable(size)
    return ByteRange(start, size - 1 if end is None else min(end, size - 1))


class RangeFile:
    """The bytes of ``byte_range`` of the open binary ``file``, read in blocks (closed with it)."""

    def __init__(self, file, byte_range: ByteRange):
        self.file = file
        self.file.seek(byte_range.start)
        self.remaining = byte_range.length

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self.file.read(size)
        self.remaining -= len(data)
        if not data:
            self.remaining = 0
        return data

    def close(self) -> None:
        self.file.close()
