"""Small document writers for tests, benchmarks and demos (no extra dependencies).

``pdf_bytes`` writes a real PDF (Helvetica text objects, one page per list
entry) that pdfminer reads back; ``docx_bytes`` writes a DOCX with headings
and page breaks the way Word saves them (a rendered page break).
"""

from __future__ import annotations

import io
import textwrap

# A page is a list of ("h", text) headings and ("p", text) paragraphs.
Page = list[tuple[str, str]]


def _pdf_escape(text: str) -> str:
    text = text.encode("cp1252", "replace").decode("cp1252")
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_bytes(pages: list[Page]) -> bytes:
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

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
                lines.append(f"BT /{font} {size} Tf 56 {y} Td ({_pdf_escape(line)}) Tj ET")
                y -= size + 4
            y -= 6
        stream = "\n".join(lines).encode("cp1252", "replace")
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        page_ids.append(add(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R /F2 %d 0 R >> >> >>" % (pages_id, content, body_font, head_font)
        ))
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id
    kids = b" ".join(b"%d 0 R" % i for i in page_ids)
    objects[pages_id - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_ids))
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
    out.write(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, catalog, xref))
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
