"""EPUB input: chapters in reading order, as a Markdown manuscript the text pipeline reads.

Reading order is the spine (non-linear items are supplementary and left out, like
front matter, unless `keep_front_matter`). The OPF, nav and NCX are read with lxml
(no entities resolved, no network), every entry within size limits (`epub_archive.py`);
`epub_xhtml.py` turns content documents into text. Chapters start where the table
of contents points (EPUB 3 nav, else the NCX): every entry down to `toc_depth`
levels (default 2, so parts and their chapters) starts a chapter at its document
or `#fragment`; deeper entries stay inside their chapter. Without a table of
contents each document is a chapter. Documents the contents skip over continue
the chapter before them.

Text: block elements (p, div, li, h1-h6, td, ...) are paragraphs; `br` is a space.
A chapter whose first block is a heading takes that heading as its title when it has
no contents label or one of the two holds all the other's words (the fuller one
wins); otherwise the label is the title and the heading a paragraph, as are later
headings.

Footnotes: reference markers are removed from the running text (links typed
`noteref` / `doc-noteref`, links to a note, and `<sup>` markers holding only such a
link) and counted. Notes (epub:type footnote/endnote/rearnote and their plural
containers, ARIA doc-footnote/doc-endnote(s), class footnote(s)/endnote(s)) keep
their text and move to the end of their chapter, after a "Notes" paragraph, with
back-links (↩) removed. Images (img, svg, ...) are dropped and counted; scripts
and styles are ignored.

Front matter (cover, title page, copyright page, table of contents, lists of
illustrations, imprint) is skipped unless `keep_front_matter`: found through the
nav document itself, the OPF guide, EPUB 3 landmarks, contents entries labelled
like front matter ("Title Page", "Copyright"; every entry into the document must
be), epub:type on the body or its first section, and for short documents the file
name (`title.xhtml`, `copyright.xhtml`...) and their text (©, "All rights
reserved", ISBN; a "Contents" heading; no text at all). `EpubBook.skipped` says what
was left out and why.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..errors import InputDecodeError, InputEmptyError, InputIsDirectoryError, InputNotFoundError
from .epub_archive import BoundedArchive
from .epub_xhtml import (
    FOOTNOTE_MARKER,
    IMAGE,
    Block,
    DocumentWalker,
    all_named,
    local_name,
    note_ids,
    parse_markup,
    resolve_href,
    text_of,
    tokens,
    types_of,
)

__all__ = [
    "FOOTNOTE_MARKER",
    "IMAGE",
    "EpubBook",
    "EpubChapter",
    "epub_to_manuscript_text",
    "markdown_escape",
    "read_epub",
]

DEFAULT_TOC_DEPTH = 2
NOTES_HEADING = "Notes"
# Font obfuscation is not DRM: the text stays readable.
FONT_OBFUSCATION = frozenset({"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"})
DRM_FILES = ("META-INF/rights.xml",)
ENCRYPTION_FILE = "META-INF/encryption.xml"
CONTAINER_FILE = "META-INF/container.xml"
DC_NS = "http://purl.org/dc/elements/1.1/"
COVER_TYPES = frozenset({"image/jpeg", "image/png"})
HTML_MEDIA_TYPES = frozenset({"application/xhtml+xml", "text/html"})
NCX_MEDIA_TYPE = "application/x-dtbncx+xml"
FRONT_TYPES: Mapping[str, str] = {  # epub:type, landmark or guide type -> what it is
    "cover": "cover",
    **dict.fromkeys(("titlepage", "title-page", "halftitlepage"), "title page"),
    **dict.fromkeys(("copyright-page", "copyright"), "copyright page"),
    **dict.fromkeys(("toc", "lot", "loi"), "table of contents"),
    **dict.fromkeys(("imprint", "imprimatur"), "imprint"),
}
# A contents entry labelled so (case and hyphens aside) marks its document as front matter.
FRONT_LABELS: Mapping[str, str] = {
    "cover": "cover",
    **dict.fromkeys(("title", "title page", "half title", "half title page"), "titlepage"),
    **dict.fromkeys(("copyright", "copyright page"), "copyright-page"),
    **dict.fromkeys(("contents", "table of contents"), "toc"),
    "imprint": "imprint",
}
_FRONT_NAMES = re.compile(
    r"(?:^|[\W_])(cover|titlepage|title[-_]page|halftitle|copyright|toc|contents)(?:[\W_\d]|$)|^(title)[-_]?\d*$"
)
_NAME_KINDS = {"titlepage": "title page", "halftitle": "title page", "contents": "table of contents"}
SHORT_DOC_WORDS = 300
_COPYRIGHT_TEXT = re.compile(r"©|\(c\)\s*\d{4}|all rights reserved|\bISBN\b", re.IGNORECASE)
_CONTENTS_TITLE = re.compile(r"^(table of )?contents$", re.IGNORECASE)


@dataclass(frozen=True)
class EpubChapter:
    title: str | None
    paragraphs: tuple[str, ...]
    notes: tuple[str, ...] = ()
    level: int = 1
    source: str = ""  # the document the chapter starts in


@dataclass(frozen=True)
class EpubBook:
    title: str | None
    authors: tuple[str, ...]
    language: str | None
    chapters: tuple[EpubChapter, ...]
    skipped: tuple[str, ...] = ()  # "file (why)" for each document left out
    dropped: Mapping[str, int] = field(default_factory=dict)  # IMAGE / FOOTNOTE_MARKER counts
    cover_image: bytes | None = None
    cover_media_type: str | None = None

    @property
    def warnings(self) -> tuple[str, ...]:
        notes = []
        if self.skipped:
            notes.append(f"skipped {len(self.skipped)} front-matter document(s): {', '.join(self.skipped)}")
        if self.dropped:
            counts = ", ".join(f"{count} {kind}{'s' if count != 1 else ''}" for kind, count in self.dropped.items())
            notes.append(f"dropped {counts} (not spoken)")
        return tuple(notes)


@dataclass(frozen=True)
class _NavEntry:
    label: str | None
    doc: str
    fragment: str | None
    depth: int


# --- the container ----------------------------------------------------------


class _Item(NamedTuple):
    path: str  # full path inside the ZIP archive
    media_type: str
    properties: frozenset[str]


@dataclass(frozen=True)
class _Package:
    """What the OPF says. Paths are full paths inside the ZIP archive."""

    metadata: dict[str, list[str]]  # "title" / "creator" / "language" -> values
    media_types: dict[str, str]  # path -> media type
    spine: list[tuple[str, bool]]  # (path, linear)
    nav: str | None
    ncx: str | None
    guide: list[tuple[str, str]]  # (path, type)
    cover: str | None  # cover image path


def read_epub(path: str | Path, keep_front_matter: bool = False, toc_depth: int = DEFAULT_TOC_DEPTH) -> EpubBook:
    """Read an EPUB 2/3 file into chapters (see the module doc for every rule).

    Raises InputNotFoundError / InputIsDirectoryError, InputDecodeError (not an EPUB,
    DRM-protected, no spine, unreadable) and InputEmptyError (no text at all).
    """
    path = Path(path)
    _check_file(path)
    try:
        with zipfile.ZipFile(path) as opened:
            archive = BoundedArchive(opened, path)
            _check_drm(archive, path)
            package = _package(archive, path)
            docs = {name: parse_markup(archive.read(name), name, path, html=True) for name, _ in package.spine}
            nav = parse_markup(archive.read(package.nav), package.nav, path, html=True) if package.nav else None
            ncx = parse_markup(archive.read(package.ncx), package.ncx, path) if package.ncx else None
            cover = archive.read(package.cover) if package.cover else None
    except KeyError as exc:
        raise InputDecodeError(f"{path}: the EPUB lacks a file it lists ({exc.args[0] if exc.args else exc})") from exc
    except (OSError, zipfile.BadZipFile, RuntimeError) as exc:
        raise InputDecodeError(f"{path}: cannot read the EPUB archive ({exc})") from exc
    entries, landmarks = _navigation(package, nav, ncx)
    notes = {(name, ident) for name, tree in docs.items() for ident in note_ids(tree)}
    dropped: Counter[str] = Counter()
    skipped: list[str] = []
    kept: list[tuple[str, list[Block]]] = []
    for name, linear in package.spine:
        counts: Counter[str] = Counter()
        blocks = DocumentWalker(name, notes, counts).blocks_of(docs[name])
        why = _front_matter_kind(name, docs[name], blocks, package, landmarks, linear)
        if why and not keep_front_matter:
            skipped.append(f"{posixpath.basename(name)} ({why})")
        else:
            kept.append((name, blocks))
            dropped.update(counts)
    chapters = _chapters(kept, [entry for entry in entries if entry.depth <= toc_depth])
    if not chapters:
        raise InputEmptyError(f"{path}: the EPUB has no text to speak")
    meta = package.metadata
    return EpubBook(
        title=(meta.get("title") or [None])[0],
        authors=tuple(meta.get("creator", [])),
        language=(meta.get("language") or [None])[0],
        chapters=tuple(chapters),
        skipped=tuple(skipped),
        dropped=dict(dropped),
        cover_image=cover,
        cover_media_type=package.media_types.get(package.cover or ""),
    )


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise InputIsDirectoryError(f"{path}: is a directory, not an EPUB file")
    try:
        is_zip = zipfile.is_zipfile(path)
    except OSError as exc:
        raise InputNotFoundError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    if not is_zip:
        raise InputDecodeError(f"{path}: not an EPUB file (it is not a ZIP archive)")


def _check_drm(archive: BoundedArchive, path: Path) -> None:
    names = set(archive.namelist())
    drm = any(name in names for name in DRM_FILES)
    if not drm and ENCRYPTION_FILE in names:
        try:
            root = parse_markup(archive.read(ENCRYPTION_FILE), ENCRYPTION_FILE, path)
            methods = [el.get("Algorithm", "") for el in all_named(root, "encryptionmethod")]
            drm = any(method not in FONT_OBFUSCATION for method in methods)
        except InputDecodeError:
            drm = True
    if drm:
        raise InputDecodeError(f"{path}: the EPUB is DRM-protected (encrypted); use a DRM-free copy of the book")


def _package(archive: BoundedArchive, path: Path) -> _Package:
    container = parse_markup(archive.read(CONTAINER_FILE), CONTAINER_FILE, path)
    rootfile = next((el.get("full-path") for el in all_named(container, "rootfile")), None)
    if not rootfile:
        raise InputDecodeError(f"{path}: not an EPUB file ({CONTAINER_FILE} names no package document)")
    opf = parse_markup(archive.read(rootfile), rootfile, path)
    base = posixpath.dirname(rootfile)
    items: dict[str, _Item] = {}
    for el in (el for el in all_named(opf, "item") if el.get("id") and el.get("href")):
        doc, _ = resolve_href(base, el.get("href", ""))
        items[el.get("id", "")] = _Item(doc, el.get("media-type", ""), tokens(el, "properties"))
    spine_el = next(iter(all_named(opf, "spine")), None)
    refs = all_named(spine_el, "itemref") if spine_el is not None else []
    spine = [(items[r.get("idref", "")].path, r.get("linear") != "no") for r in refs if r.get("idref") in items]
    spine = [(doc, linear) for doc, linear in spine if _media_type(items, doc) in HTML_MEDIA_TYPES]
    if not spine:
        raise InputDecodeError(f"{path}: the EPUB has no spine (no documents in reading order)")
    meta: dict[str, list[str]] = {}
    for el in opf.iter():
        if isinstance(el.tag, str) and el.tag.startswith(f"{{{DC_NS}}}") and text_of(el):
            meta.setdefault(local_name(el), []).append(text_of(el))
    guide = [(resolve_href(base, r.get("href", ""))[0], r.get("type", "").lower()) for r in all_named(opf, "reference")]
    cover_id = next((el.get("content") for el in all_named(opf, "meta") if el.get("name") == "cover"), None)
    covers = [item for key, item in items.items() if "cover-image" in item.properties or key == cover_id]
    ncx_id = spine_el.get("toc") if spine_el is not None else None
    ncx = [item.path for key, item in items.items() if key == ncx_id or item.media_type == NCX_MEDIA_TYPE]
    return _Package(
        metadata=meta,
        media_types={item.path: item.media_type for item in items.values()},
        spine=spine,
        nav=next((item.path for item in items.values() if "nav" in item.properties), None),
        ncx=ncx[0] if ncx else None,
        guide=guide,
        cover=next((item.path for item in covers if item.media_type in COVER_TYPES), None),
    )


def _media_type(items: Mapping[str, _Item], doc: str) -> str:
    return next((item.media_type for item in items.values() if item.path == doc), "")


# --- navigation -------------------------------------------------------------


def _navigation(package: _Package, nav, ncx) -> tuple[list[_NavEntry], dict[str, str]]:
    """Table-of-contents entries (nav, else NCX) and landmarks (document -> types, from the nav's
    landmarks and from contents labels such as "Title Page")."""
    entries: list[_NavEntry] = []
    landmarks: dict[str, str] = {}
    if nav is not None and package.nav:
        base = posixpath.dirname(package.nav)
        for element in all_named(nav, "nav"):
            kinds = types_of(element)
            lists = [child for child in element if local_name(child) == "ol"]
            if "toc" in kinds and lists and not entries:
                entries = list(_nav_list(lists[0], base, 1))
            elif "landmarks" in kinds:
                for link in (el for el in all_named(element, "a") if el.get("href")):
                    doc, _ = resolve_href(base, link.get("href", ""))
                    landmarks[doc] = f"{landmarks.get(doc, '')} {' '.join(sorted(types_of(link)))}".strip()
    if not entries and ncx is not None and package.ncx:
        entries = list(_ncx_points(ncx, posixpath.dirname(package.ncx), 1))
    spine_docs = {doc for doc, _ in package.spine}
    entries = [entry for entry in entries if entry.doc in spine_docs]
    for doc, kind in _labelled_front_matter(entries).items():
        landmarks[doc] = f"{landmarks.get(doc, '')} {kind}".strip()
    return entries, landmarks


def _labelled_front_matter(entries: Sequence[_NavEntry]) -> dict[str, str]:
    """Documents every contents entry of which is labelled like front matter ("Title Page"), with
    that kind as an epub:type; a document that also holds a chapter's entry is content."""
    kinds: dict[str, str | None] = {}
    for entry in entries:
        label = " ".join((entry.label or "").casefold().replace("-", " ").split())
        kind = FRONT_LABELS.get(label)
        kinds[entry.doc] = kind if kinds.get(entry.doc, kind) == kind else None
    return {doc: kind for doc, kind in kinds.items() if kind}


def _nav_list(ol, base: str, depth: int) -> Iterable[_NavEntry]:
    for li in (child for child in ol if local_name(child) == "li"):
        head = next((child for child in li if local_name(child) in ("a", "span")), None)
        if head is not None and head.get("href"):
            doc, fragment = resolve_href(base, head.get("href", ""))
            yield _NavEntry(text_of(head) or None, doc, fragment, depth)
        for sub in (child for child in li if local_name(child) == "ol"):
            yield from _nav_list(sub, base, depth + 1)


def _ncx_points(parent, base: str, depth: int) -> Iterable[_NavEntry]:
    for point in (child for child in parent if local_name(child) in ("navmap", "navpoint")):
        if local_name(point) == "navmap":
            yield from _ncx_points(point, base, depth)
            continue
        label = next(iter(all_named(point, "text")), None)
        content = next((child for child in point if local_name(child) == "content"), None)
        if content is not None and content.get("src"):
            doc, fragment = resolve_href(base, content.get("src", ""))
            yield _NavEntry(text_of(label) if label is not None else None, doc, fragment, depth)
        yield from _ncx_points(point, base, depth + 1)


# --- front matter -----------------------------------------------------------


def _front_matter_kind(name, root, blocks, package: _Package, landmarks, linear: bool) -> str | None:
    """Why the document `name` is front matter, or None when it is content."""
    if name == package.nav:
        return "table of contents"
    declared = [kind for doc, kind in package.guide if doc == name]
    declared += landmarks.get(name, "").split()
    body = root.find(".//{*}body")
    body = root if body is None else body
    first = next((child for child in body if isinstance(child.tag, str)), None)
    declared += sorted(types_of(body)) + (sorted(types_of(first)) if first is not None else [])
    for kind in declared:
        if kind in FRONT_TYPES:
            return FRONT_TYPES[kind]
    return _guess_front_matter(name, blocks) or (None if linear else "non-linear")


def _guess_front_matter(name: str, blocks: Sequence[Block]) -> str | None:
    """Heuristics for short documents only: a long one is content whatever its name."""
    words = sum(len(block.text.split()) for block in blocks)
    if words > SHORT_DOC_WORDS:
        return None
    match = _FRONT_NAMES.search(posixpath.basename(name).rsplit(".", 1)[0].lower())
    if match:
        kind = (match.group(1) or "titlepage").replace("-", "").replace("_", "")
        return _NAME_KINDS.get(kind, FRONT_TYPES.get(kind, "title page"))
    if words == 0:
        return "no text"
    if any(_COPYRIGHT_TEXT.search(block.text) for block in blocks):
        return "copyright page"
    if blocks[0].kind == "heading" and _CONTENTS_TITLE.match(blocks[0].text.strip()):
        return "table of contents"
    return None


# --- chapters ---------------------------------------------------------------


class _ChapterBuilder:
    def __init__(self, label: str | None, level: int, source: str) -> None:
        self.title = label
        self.level = level
        self.source = source
        self.paragraphs: list[str] = []
        self.notes: list[str] = []
        self._started = False

    def add(self, block: Block) -> None:
        if block.kind == "note":
            self.notes.append(block.text)
            return
        if not self._started and block.kind == "heading" and _related(self.title, block.text):
            # The heading is the title; it replaces the label unless the label says more.
            if not self.title or _words(self.title) <= _words(block.text):
                self.title = block.text
        else:
            self.paragraphs.append(block.text)
        self._started = True

    def build(self) -> EpubChapter | None:
        if not (self.title or self.paragraphs or self.notes):
            return None
        return EpubChapter(self.title, tuple(self.paragraphs), tuple(self.notes), self.level, self.source)


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))


def _related(label: str | None, heading: str) -> bool:
    """A chapter's first heading is its title when it has no label or they share their words."""
    if not label:
        return True
    return _words(label) <= _words(heading) or _words(heading) <= _words(label)


def _chapters(kept: Sequence[tuple[str, list[Block]]], entries: Sequence[_NavEntry]) -> list[EpubChapter]:
    starts: dict[str, list[_NavEntry]] = {}
    for entry in entries:
        starts.setdefault(entry.doc, []).append(entry)
    builders: list[_ChapterBuilder] = []
    for name, blocks in kept:
        marks = sorted(((_position(blocks, e.fragment), e) for e in starts.get(name, [])), key=lambda m: m[0])
        edges = [position for position, _ in marks] + [len(blocks)]
        if edges[0] > 0 and (not builders or not entries):
            builders.append(_ChapterBuilder(None, 1, name))  # no contents, or text before its first entry
        for block in blocks[: edges[0]]:
            builders[-1].add(block)
        for index, (position, entry) in enumerate(marks):
            builders.append(_ChapterBuilder(entry.label, entry.depth, name))
            for block in blocks[position : edges[index + 1]]:
                builders[-1].add(block)
    return [chapter for chapter in (b.build() for b in builders) if chapter is not None]


def _position(blocks: Sequence[Block], fragment: str | None) -> int:
    """Index of the first block at or after the element with id `fragment` (0 without one)."""
    if fragment is None:
        return 0
    for index, block in enumerate(blocks):
        if fragment in block.anchors:
            return index
    return 0


# --- Markdown ---------------------------------------------------------------

_INLINE_SPECIAL = frozenset("\\`*_[]<>&|~#")
_ORDERED_START = re.compile(r"^(\d{1,9})([.)])")


def markdown_escape(text: str, block_start: bool = True) -> str:
    """`text` with every Markdown-significant character backslash-escaped, so it reads as itself."""
    escaped = "".join("\\" + char if char in _INLINE_SPECIAL else char for char in text)
    if block_start:
        match = _ORDERED_START.match(escaped)
        if match:
            escaped = f"{match.group(1)}\\{escaped[len(match.group(1)) :]}"
        elif escaped[:1] in ("-", "+", "="):
            escaped = "\\" + escaped
    return escaped


def epub_to_manuscript_text(book: EpubBook, front_matter: bool = False) -> str:
    """A Markdown manuscript: `#` per chapter (`##` for nested ones), paragraphs, then notes.

    Every character of the book's text is escaped so Markdown reads it literally. With
    `front_matter`, a YAML block with the title and authors comes first (for
    `metadata.parse_front_matter`).
    """
    lines: list[str] = []
    if front_matter:
        import yaml

        fields = {"title": book.title, "author": ", ".join(book.authors) or None}
        fields = {key: value for key, value in fields.items() if value}
        if fields:
            lines += ["---", yaml.safe_dump(fields, allow_unicode=True, sort_keys=False).strip(), "---", ""]
    for chapter in book.chapters:
        marker = "#" if chapter.level <= 1 else "##"
        title = markdown_escape(chapter.title, block_start=False) if chapter.title else ""
        lines += [f"{marker} {title}".rstrip(), ""]
        for paragraph in chapter.paragraphs:
            lines += [markdown_escape(paragraph), ""]
        if chapter.notes:
            lines += [NOTES_HEADING, ""]
            for note in chapter.notes:
                lines += [markdown_escape(note), ""]
    return "\n".join(lines)
