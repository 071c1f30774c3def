"""The retrieval evaluation set of ``benchmarks/retrieval.py``: the Python FAQ.

No BEIR-style set (SciFact, NFCorpus, FiQA...) ships its documents and
relevance labels inside a package on PyPI, npm or Debian: ``beir``,
``ir-datasets`` and ``mteb`` download them from hubs at run time, which
this project may not do. So the set is built from a public document set
that a registry does ship, with labels that people wrote:

- **Source**: Debian's ``python3.11-doc`` package (the CPython 3.11
  documentation), fetched with ``apt-get download python3.11-doc`` (or read
  from ``/usr/share/doc/python3.11`` when installed). It carries the
  reStructuredText sources under ``html/_sources/``.
- **Queries and labels**: the FAQ pages (``faq/*.rst.txt``: general,
  programming, design, library, extending, windows, gui, installed). Every
  question heading (a line underlined with ``---``) is a query; the text
  under it, up to the next heading, is its one relevant document. The
  CPython authors wrote both, so the labels are theirs, not ours.
- **Corpus**: every FAQ answer as its own file (the question heading is
  removed, so a search cannot match the question verbatim), plus every page
  of the tutorial and the HOWTOs as distractor files (they are about the
  same things, so they compete for the same queries; any distractor that
  also answers a question counts as a miss, equally for every mode).
- **Clean-up**: reST markup is reduced to its words (``:func:`len``` ->
  ``len``, ```text <url>`_`` -> ``text``, directives and heading underlines
  dropped); code blocks stay, as in real documentation. A question whose
  answer is under 50 characters (``See the next question.``) is left out.
- **Splits**: a query is in ``dev`` when the SHA-1 of its text is 0 mod 3,
  else in ``test`` (stable across runs and Python versions). Fusion
  parameters are tuned on ``dev`` only; the reported numbers are ``test``.

``python benchmarks/retrieval_set.py`` prints the set's size.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "python3.11-doc"
_INSTALLED = Path("/usr/share/doc/python3.11/html/_sources")
CACHE = Path.home() / ".cache" / "responsa" / "retrieval"

_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+]){3,}\s*$")
_ROLE = re.compile(r":[\w:.-]+:`([^`]*)`")
_LINK = re.compile(r"`([^`<]+?)\s*<[^`>]*>`_{1,2}")
_LITERAL = re.compile(r"``([^`]*)``")
_REF = re.compile(r"`([^`]+)`_{1,2}")
_DIRECTIVE = re.compile(r"^\s*\.\.(\s|$)")
_FIELD = re.compile(r"^:\w+:(\s|$)")
MIN_ANSWER = 50
"""Answers shorter than this (``See the next question.``) are no label: their question is left out."""


@dataclass(frozen=True, slots=True)
class Doc:
    name: str
    """The file name it is uploaded as (unique)."""
    text: str


@dataclass(frozen=True, slots=True)
class Query:
    qid: str
    text: str
    relevant: frozenset[str]
    """Names of the relevant docs."""
    split: str


@dataclass(slots=True)
class RetrievalSet:
    source: str
    docs: list[Doc] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)

    def split(self, name: str) -> list[Query]:
        return [q for q in self.queries if name in ("all", q.split)]


def _role_text(match: re.Match[str]) -> str:
    inner = match.group(1)
    title = re.match(r"\s*(.+?)\s*<[^>]*>\s*$", inner, re.DOTALL)   # :ref:`text <target>` -> text
    inner = title.group(1) if title else inner
    return inner.lstrip("~!")


def clean(rst: str) -> str:
    """reST -> plain words (see the module docstring)."""
    lines = [line.rstrip() for line in rst.splitlines()
             if not (_UNDERLINE.match(line) or _DIRECTIVE.match(line) or _FIELD.match(line))]
    text = "\n".join(lines)
    text = _ROLE.sub(_role_text, text)
    text = _LINK.sub(r"\1", text)
    text = _LITERAL.sub(r"\1", text)
    text = _REF.sub(r"\1", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _split_of(text: str) -> str:
    return "dev" if int(hashlib.sha1(text.encode()).hexdigest(), 16) % 3 == 0 else "test"


def _headings(lines: list[str]) -> list[tuple[int, str, str]]:
    """(line index of the title, title, underline char) for every section heading."""
    out = []
    for i in range(1, len(lines)):
        m = _UNDERLINE.match(lines[i])
        title = lines[i - 1].strip()
        if m and title and not _UNDERLINE.match(lines[i - 1]) and len(lines[i].rstrip()) >= len(title):
            out.append((i - 1, title, m.group(1)))
    return out


def faq_pairs(page: str) -> list[tuple[str, str]]:
    """(question, answer) for every ``---``-underlined heading of one FAQ page."""
    lines = page.splitlines()
    heads = _headings(lines)
    pairs = []
    for n, (start, title, char) in enumerate(heads):
        if char != "-":
            continue
        end = heads[n + 1][0] if n + 1 < len(heads) else len(lines)
        answer = clean("\n".join(lines[start + 2:end]))
        if len(answer) >= MIN_ANSWER:
            pairs.append((title, answer))
    return pairs


def sources_dir() -> Path:
    """The reST sources: installed docs, else the Debian package fetched into the cache once."""
    if (_INSTALLED / "faq").is_dir():
        return _INSTALLED
    root = CACHE / PACKAGE
    sources = root / "usr/share/doc/python3.11/html/_sources"
    if not (sources / "faq").is_dir():
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", PACKAGE], cwd=tmp, check=True, capture_output=True)
            deb = next(Path(tmp).glob("*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            (root / "SOURCE").write_text(deb.name)
    return sources


def load(distractors: tuple[str, ...] = ("tutorial", "howto")) -> RetrievalSet:
    src = sources_dir()
    stamp = src.parents[5] / "SOURCE" if src != _INSTALLED else None
    rs = RetrievalSet(source=stamp.read_text() if stamp else f"installed {PACKAGE}")
    seen: set[str] = set()
    for page in sorted((src / "faq").glob("*.rst.txt")):
        section = page.name.split(".")[0]
        for n, (question, answer) in enumerate(faq_pairs(page.read_text(encoding="utf-8")), 1):
            if question in seen:
                continue
            seen.add(question)
            name = f"faq-{section}-{n:03d}.txt"
            rs.docs.append(Doc(name, answer))
            rs.queries.append(Query(f"{section}-{n:03d}", question, frozenset({name}), _split_of(question)))
    for folder in distractors:
        for page in sorted((src / folder).glob("*.rst.txt")):
            text = clean(page.read_text(encoding="utf-8"))
            if text:
                rs.docs.append(Doc(f"{folder}-{page.name.split('.')[0]}.txt", text))
    return rs


if __name__ == "__main__":
    data = load()
    chars = sum(len(d.text) for d in data.docs)
    print(f"{data.source}: {len(data.docs)} docs ({chars / 1e6:.2f} MB of text), {len(data.queries)} queries "
          f"(dev {len(data.split('dev'))}, test {len(data.split('test'))})")
