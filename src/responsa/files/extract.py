"""Text out of a file, for models that take no files and for chunking
(vector stores): PDF, HTML, and text of every kind (plain, Markdown, code,
JSON, CSV, XML, YAML...), chosen by MIME type, then extension, then by
looking at the bytes. Anything else is a 400 that says what works.

PDF goes through ``pypdf``: pure Python (no native library to ship or trust
with hostile input), maintained by the py-pdf project, and text extraction
good enough for retrieval; ``pypdfium2`` extracts faster but bundles a
multi-megabyte PDFium binary, a poor trade for a server whose PDFs are
user uploads of modest size. HTML is reduced to its text with the standard
library's ``html.parser`` (scripts and styles dropped): no dependency for
what is a tag stripper.

Every function here is CPU work on bytes already in memory: callers run it
off the event loop (``asyncio.to_thread``) for anything but small inputs.
"""

from __future__ import annotations

import codecs
import io
import logging
import mimetypes
import re
from html.parser import HTMLParser

from responsa.protocol.errors import InvalidRequest

log = logging.getLogger("responsa.files")

_TEXT_EXTENSIONS = frozenset((
    ".txt", ".text", ".md", ".markdown", ".rst", ".adoc", ".org", ".tex", ".log", ".csv", ".tsv", ".json", ".jsonl",
    ".ndjson", ".xml", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".env", ".properties", ".sql", ".graphql",
    ".proto", ".py", ".pyi", ".ipynb", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".c", ".h", ".cc", ".cpp",
    ".hpp", ".cs", ".java", ".kt", ".kts", ".scala", ".go", ".rs", ".rb", ".php", ".pl", ".pm", ".lua", ".r", ".jl",
    ".swift", ".m", ".mm", ".dart", ".ex", ".exs", ".erl", ".hs", ".ml", ".clj", ".sh", ".bash", ".zsh", ".fish",
    ".ps1", ".bat", ".cmd", ".css", ".scss", ".sass", ".less", ".vue", ".svelte", ".diff", ".patch", ".srt", ".vtt",
    ".bib", ".gitignore", ".dockerfile", ".makefile",
))
_HTML_EXTENSIONS = frozenset((".html", ".htm", ".xhtml"))
_TEXT_MIME = ("text/", "application/json", "application/xml", "application/x-yaml", "application/yaml",
              "application/toml", "application/javascript", "application/x-javascript", "application/x-sh",
              "application/sql", "application/x-tex", "application/x-ndjson", "application/jsonl")
_HTML_MIME = ("text/html", "application/xhtml+xml")
_SNIFF_BYTES = 8192
SUPPORTED = "PDF, HTML and text files (plain text, Markdown, source code, JSON, CSV, XML, YAML...)"


class UnsupportedFile(InvalidRequest):
    """A file whose text cannot be read: a 400 naming what would work."""

    default_code = "unsupported_file"


def _kind(filename: str, mime_type: str | None, data: bytes | None) -> str | None:
    """``pdf``, ``html``, ``text`` or ``None`` (unsupported)."""
    mime = (mime_type or "").split(";")[0].strip().lower()
    if not mime or mime == "application/octet-stream":
        mime = (mimetypes.guess_type(filename)[0] or "").lower()
    ext = ("." + filename.rsplit(".", 1)[-1].lower()) if "." in filename else ""
    if mime == "application/pdf" or ext == ".pdf":
        return "pdf"
    if mime in _HTML_MIME or ext in _HTML_EXTENSIONS:
        return "html"
    if mime.startswith(_TEXT_MIME) or mime.endswith(("+json", "+xml")) or ext in _TEXT_EXTENSIONS:
        return "text"
    if data is not None and _looks_like_text(data[:_SNIFF_BYTES]):
        return "pdf" if data.startswith(b"%PDF-") else "text"
    if data is not None and data.startswith(b"%PDF-"):
        return "pdf"
    return None


def _looks_like_text(head: bytes) -> bool:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut off at the end of the sample
    return True


def supported(filename: str, mime_type: str | None = None, data: bytes | None = None) -> bool:
    """Whether ``extract_text`` can read such a file (``data``: sniff its first bytes too)."""
    return _kind(filename, mime_type, data) is not None


def extract_text(data: bytes, filename: str, mime_type: str | None = None) -> str:
    """The text of a file. Raises ``UnsupportedFile`` (400) for a type this
    cannot read, or a file that is not what its type says (a broken PDF)."""
    kind = _kind(filename, mime_type, data)
    if kind == "pdf":
        return _pdf(data, filename)
    if kind == "html":
        return html_text(decode(data))
    if kind == "text":
        return decode(data)
    raise UnsupportedFile(f"Cannot read text from '{filename}' ({mime_type or 'unknown type'}): supported are "
                          f"{SUPPORTED}.", param="file")


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) or BOM-marked UTF-16; undecodable bytes
    become U+FFFD rather than failing a whole document over one byte."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", "replace")
    return data.decode("utf-8-sig", "replace")


def _pdf(data: bytes, filename: str) -> str:
    from pypdf import PdfReader  # imported on first use: most requests carry no PDF
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnsupportedFile(f"'{filename}' is an encrypted PDF: upload it without a password.", param="file")
        pages = [page.extract_text() or "" for page in reader.pages]
    except UnsupportedFile:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        log.info("unreadable PDF %r: %r", filename, exc)
        raise UnsupportedFile(f"'{filename}' is not a readable PDF ({type(exc).__name__}).", param="file") from None
    return "\n\n".join(p.strip() for p in pages if p.strip())


class _TextOf(HTMLParser):
    _SKIP = frozenset(("script", "style", "template", "noscript"))
    _BLOCK = frozenset(("p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article",
                        "pre", "blockquote", "table", "ul", "ol", "hr", "title"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


_BLANK_RUNS = re.compile(r"[ \t\r\f\v]*\n\s*\n\s*")
_SPACES = re.compile(r"[ \t\r\f\v]+")


def html_text(markup: str) -> str:
    """The visible text of an HTML document, one block per paragraph."""
    parser = _TextOf()
    parser.feed(markup)
    parser.close()
    text = _SPACES.sub(" ", "".join(parser.parts))
    return _BLANK_RUNS.sub("\n\n", text).strip()
