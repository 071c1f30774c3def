"""Text extraction (``responsa.files.extract``): what a model or a vector
store gets out of each kind of file, and the 400 for what has no text."""

from __future__ import annotations

import codecs

import pytest

from responsa.files.extract import UnsupportedFile, extract_text, supported
from tests.files.pdfs import pdf_bytes


def test_pdf_text_of_every_page_in_order() -> None:
    pdf = pdf_bytes(["Invoice 1042 (paid)", "Total: 17.50 EUR"], ["Second page: thank you"])
    text = extract_text(pdf, "invoice.pdf")
    assert text.splitlines() == ["Invoice 1042 (paid)", "Total: 17.50 EUR", "", "Second page: thank you"]
    assert extract_text(pdf, "no-extension", "application/pdf") == text
    assert extract_text(pdf, "blob") == text  # recognised by its bytes


def test_html_keeps_visible_text_only() -> None:
    page = (b"<html><head><title>Menu</title><style>p{color:red}</style></head><body><h1>Soup</h1>"
            b"<p>Tomato &amp; basil</p><script>alert('x')</script><ul><li>one</li><li>two</li></ul></body></html>")
    assert extract_text(page, "menu.html").split() == ["Menu", "Soup", "Tomato", "&", "basil", "one", "two"]
    assert "alert" not in extract_text(page, "x", "text/html; charset=utf-8")


@pytest.mark.parametrize(("name", "data"), [
    ("a.md", "# Title\n\n* item ünï\n"), ("b.py", "def f():\n    return 1\n"), ("c.json", '{"k": [1, 2]}'),
    ("d.csv", "a,b\n1,2\n"), ("Makefile", "all:\n\techo hi\n"), ("e.unknownext", "plain words\n"),
])
def test_text_formats_come_back_as_written(name: str, data: str) -> None:
    assert extract_text(data.encode(), name) == data
    assert supported(name, data=data.encode())


def test_encodings() -> None:
    assert extract_text(codecs.BOM_UTF8 + "héllo".encode(), "a.txt") == "héllo"
    assert extract_text(codecs.BOM_UTF16_LE + "héllo".encode("utf-16-le"), "a.txt") == "héllo"
    assert extract_text(b"caf\xe9 ok", "a.txt") == "caf\ufffd ok"  # one bad byte does not fail the file


def test_files_without_text_are_a_400_saying_what_works() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)
    for data, name in ((png, "photo.png"), (png, "photo"), (b"PK\x03\x04" + bytes(40), "doc.docx")):
        assert not supported(name, data=data)
        with pytest.raises(UnsupportedFile) as caught:
            extract_text(data, name)
        assert caught.value.status == 400 and caught.value.code == "unsupported_file"
        assert "PDF" in caught.value.message and name in caught.value.message
    with pytest.raises(UnsupportedFile) as broken:
        extract_text(b"%PDF-1.4\nthis is not really a pdf", "broken.pdf")
    assert "not a readable PDF" in broken.value.message
