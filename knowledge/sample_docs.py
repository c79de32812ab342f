"""Small document writers for tests, benchmarks and demos (no extra dependencies).

``pdf_bytes`` writes a real PDF (Helvetica text objects, one page per list
entry), optionally encrypted with a password; ``docx_bytes`` writes a DOCX with headings
and page breaks the way Word saves them (a rendered page break).
"""

from __future__ import annotations

import io
import struct
import textwrap
from hashlib import md5

# A page is a list of ("h", text) headings and ("p", text) paragraphs.
Page = list[tuple[str, str]]


def _pdf_escape(text: str) -> str:
    text = text.encode("cp1252", "replace").decode("cp1252")
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


# The PDF standard security handler, revision 2 (40-bit RC4): the password padding string.
_PASSWORD_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
    state, j = list(range(256)), 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out, i, j = bytearray(), 0, 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


def pdf_bytes(pages: list[Page], password: str | None = None, owner_password: str | None = None,
              scaled_text: bool = False) -> bytes:
    """A PDF of the pages. ``password`` encrypts it (a reader needs the password to open it);
    ``owner_password`` alone encrypts it with an empty user password (opens without asking, as
    PDFs that only restrict printing or copying do). ``scaled_text`` sets every font to size 1
    and scales the text matrix instead, as some producers write text."""
    encrypted = password is not None or owner_password is not None
    file_id = md5(repr(pages).encode()).digest()
    if encrypted:  # PDF 1.7 (ISO 32000-1) 7.6.3, algorithms 2, 3 and 4
        padded_user = ((password or "").encode("latin-1") + _PASSWORD_PAD)[:32]
        padded_owner = ((owner_password or password or "").encode("latin-1") + _PASSWORD_PAD)[:32]
        permissions = -4  # everything allowed
        owner_entry = _rc4(md5(padded_owner).digest()[:5], padded_user)
        file_key = md5(padded_user + owner_entry + struct.pack("<i", permissions) + file_id).digest()[:5]
        user_entry = _rc4(file_key, _PASSWORD_PAD)

    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    def stream(data: bytes) -> bytes:
        if encrypted:  # streams are encrypted with a key of the file key and their object number
            data = _rc4(md5(file_key + struct.pack("<i", len(objects) + 1)[:3] + b"\0\0").digest()[:10], data)
        return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"

    catalog = add(b"")  # filled in at the end
    pages_id = add(b"")
    body_font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    head_font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
    page_ids = []
    for page in pages:
        lines, y = [], 750
        for kind, text in page:
            size, font, width = (16, "F2", 60) if kind == "h" else (11, "F1", 95)
            if kind == "h":
                y -= 8
            for line in textwrap.wrap(text, width) or [""]:
                place = f"1 Tf {size} 0 0 {size} 56 {y} Tm" if scaled_text else f"{size} Tf 56 {y} Td"
                lines.append(f"BT /{font} {place} ({_pdf_escape(line)}) Tj ET")
                y -= size + 4
            y -= 6
        content = add(stream("\n".join(lines).encode("cp1252", "replace")))
        page_ids.append(add(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R /F2 %d 0 R >> >> >>" % (pages_id, content, body_font, head_font)
        ))
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id
    kids = b" ".join(b"%d 0 R" % i for i in page_ids)
    objects[pages_id - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_ids))
    trailer = b""
    if encrypted:
        encrypt = add(b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P %d >>"
                      % (owner_entry.hex().encode(), user_entry.hex().encode(), permissions))
        trailer = b" /Encrypt %d 0 R /ID [<%s> <%s>]" % (encrypt, file_id.hex().encode(), file_id.hex().encode())
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R%s >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, catalog, trailer, xref))
    return out.getvalue()


def docx_bytes(pages: list[Page]) -> bytes:
    import docx
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    document = docx.Document()
    for number, page in enumerate(pages):
        for index, (kind, text) in enumerate(page):
            paragraph = document.add_heading(text, level=1) if kind == "h" else document.add_paragraph(text)
            if number > 0 and index == 0:
                # What Word writes where a new page starts when it saves the file.
                run = paragraph.runs[0]._r
                run.insert(0, OxmlElement("w:lastRenderedPageBreak"))
                assert run[0].tag == qn("w:lastRenderedPageBreak")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def text_bytes(pages: list[Page]) -> bytes:
    """Plain text: headings in capitals on their own line, pages separated by form feeds."""
    return "\f".join(
        "\n\n".join(text.upper() if kind == "h" else text for kind, text in page) + "\n" for page in pages
    ).encode()


def markdown_bytes(pages: list[Page]) -> bytes:
    return "\n\n".join(
        ("## " + text) if kind == "h" else text for page in pages for kind, text in page
    ).encode()


def html_bytes(pages: list[Page]) -> bytes:
    from html import escape

    body = "\n".join(
        f"<h2>{escape(text)}</h2>" if kind == "h" else f"<p>{escape(text)}</p>" for page in pages for kind, text in page
    )
    return f"<!DOCTYPE html><html><head><title>Doc</title></head><body>{body}</body></html>".encode()


WRITERS = {"pdf": pdf_bytes, "docx": docx_bytes, "txt": text_bytes, "md": markdown_bytes, "html": html_bytes}


# A one-page price list (the demo salon's): a list of prices under headings, as
# price lists are. For tests and for trying the demo bot (``pdf_bytes([SALON_PRICE_LIST])``).
SALON_PRICE_LIST: Page = [
    ("h", "Elegant Beauty Salon - Price list 2026"),
    ("p", "All prices include tax. Students and seniors get 10 percent off from Monday to Thursday."),
    ("h", "Hair"),
    ("p", "Women's haircut and blow-dry: 65 dollars."),
    ("p", "Men's haircut: 35 dollars."),
    ("p", "Children's haircut (under 12): 25 dollars."),
    ("p", "Full colour: from 120 dollars. Highlights: from 150 dollars."),
    ("h", "Nails"),
    ("p", "Classic manicure: 25 dollars."),
    ("p", "Gel manicure: 38 dollars."),
    ("p", "Classic pedicure: 40 dollars."),
    ("p", "Gel pedicure: 52 dollars."),
    ("h", "Face and body"),
    ("p", "Classic facial (60 minutes): 85 dollars."),
    ("p", "Eyebrow shaping: 18 dollars. Lash lift: 55 dollars."),
    ("p", "Swedish massage (60 minutes): 90 dollars."),
]
