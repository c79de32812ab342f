"""PDF text layer -> blocks (pypdfium2): paragraphs, headings by font size, pages, and why a PDF is unreadable."""

import pypdfium2 as pdfium
import pytest

from knowledge.partition import DocumentUnreadable, partition_pdf
from knowledge.sample_docs import pdf_bytes

LONG = ("A classic manicure takes forty minutes and costs 25 dollars; gel polish adds ten minutes and "
        "10 dollars, and the removal of an old gel coat is free when you book a new one.")
PAGES = [
    [("h", "Nail care"), ("p", LONG), ("p", "Pedicures cost 40 dollars.")],
    [("h", "Opening hours"), ("p", "Monday to Friday 9 to 7.")],
]
EXPECTED = [("Nail care", 1, True), (LONG, 1, False), ("Pedicures cost 40 dollars.", 1, False),
            ("Opening hours", 2, True), ("Monday to Friday 9 to 7.", 2, False)]


@pytest.mark.parametrize("scaled_text", [False, True], ids=["font-size", "text-matrix"])
def test_a_heading_and_two_paragraphs_are_three_blocks_on_their_page(scaled_text):
    # The long paragraph wraps over two lines: one block, its lines joined by a space.
    blocks, pages = partition_pdf(pdf_bytes(PAGES, scaled_text=scaled_text))
    assert pages == 2
    assert [(b.text, b.page, b.heading) for b in blocks] == EXPECTED


def test_password_protected_pdf_says_so():
    data = pdf_bytes(PAGES, password="salon")
    with pytest.raises(DocumentUnreadable, match="The PDF is password-protected; upload an unprotected copy."):
        partition_pdf(data)
    # The file is really encrypted, not damaged: the password opens it.
    document = pdfium.PdfDocument(data, password="salon")
    try:
        assert len(document) == 2 and "Nail care" in document[0].get_textpage().get_text_range()
    finally:
        document.close()


def test_unsupported_security_handler_is_reported_as_protected():
    data = pdf_bytes(PAGES, password="salon").replace(b"/Filter /Standard", b"/Filter /Unknown1")
    with pytest.raises(DocumentUnreadable, match="password-protected"):
        partition_pdf(data)


def test_pdf_with_only_an_owner_password_is_read():
    # Encrypted to restrict printing or copying: opens without a password, like in any viewer.
    blocks, pages = partition_pdf(pdf_bytes(PAGES, owner_password="agency"))
    assert pages == 2 and [(b.text, b.page, b.heading) for b in blocks] == EXPECTED


@pytest.mark.parametrize("data,message", [
    (b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage without xref or trailer\n", "The PDF is damaged and cannot"),
    (pdf_bytes(PAGES)[:400], "The PDF is damaged and cannot"),
    (pdf_bytes([]), "The PDF is damaged: it has no readable pages."),
    (pdf_bytes([[], []]), "The PDF has 2 page(s) but no text layer"),
])
def test_unreadable_pdfs_say_why(data, message):
    with pytest.raises(DocumentUnreadable) as caught:
        partition_pdf(data)
    assert str(caught.value).startswith(message)
