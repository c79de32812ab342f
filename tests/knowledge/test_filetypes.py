"""Upload validation judges a file by its bytes, not only its name."""

import pytest

from knowledge.filetypes import UnsupportedFile, detect
from knowledge.sample_docs import docx_bytes, pdf_bytes

PAGES = [[("h", "Title"), ("p", "Some text.")]]


@pytest.mark.parametrize("name,data,expected", [
    ("a.pdf", pdf_bytes(PAGES), "pdf"),
    ("a.docx", docx_bytes(PAGES), "docx"),
    ("a.txt", "Plain words, café.".encode(), "txt"),
    ("a.md", b"# Title\n\nText", "md"),
    ("a.HTML", b"<html><body><p>x</p></body></html>", "html"),
    ("a.csv", b"a,b\n1,2\n", "csv"),
    ("a.txt", b"Windows text \x93quoted\x94", "txt"),
])
def test_supported_types_are_recognised_by_content(name, data, expected):
    assert detect(name, data) == expected


@pytest.mark.parametrize("name,data,message", [
    ("prices.pdf", b"", "The file is empty"),
    ("prices.txt", b"  \n\n ", "The file is empty"),
    ("prices.pdf", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "PNG image"),
    ("prices.docx", b"MZ\x90\x00" + b"\x00" * 64, "Windows program"),
    ("prices.pdf", b"just some text pretending", "the content is plain text"),
    ("prices.docx", pdf_bytes(PAGES), "The name says a Word (DOCX) document but the content is a PDF"),
    ("prices.txt", pdf_bytes(PAGES), "The name says plain text but the content is a PDF"),
    ("prices.txt", bytes(range(256)) * 4, "binary data"),
    ("prices.xlsx", b"PK\x03\x04", "are not supported"),
    ("prices", b"hello", "(no extension)"),
])
def test_refused_files_say_why(name, data, message):
    with pytest.raises(UnsupportedFile) as error:
        detect(name, data)
    assert message in str(error.value)
