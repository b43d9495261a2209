"""XHTML content documents of an EPUB to text blocks: paragraphs, headings and notes.

Used by `epub.py` (whose module doc states the rules). lxml only; XML is parsed with
no entity resolution and no network access.
"""

from __future__ import annotations

import posixpath
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from ..errors import InputDecodeError
from .controls import remove_terminal_controls, without_terminal_controls

FOOTNOTE_MARKER = "footnote marker"
IMAGE = "image"
CONTROL_CHARACTER = "control character"  # or terminal escape sequence (controls.py)
OPS_NS = "http://www.idpf.org/2007/ops"
_TYPE_ATTRS = (f"{{{OPS_NS}}}type", "epub:type")
HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
BLOCK_TAGS = HEADING_TAGS | {"p", "div", "li", "blockquote", "section", "article", "aside", "header", "footer"}
BLOCK_TAGS |= {"figure", "figcaption", "pre", "table", "tr", "td", "th", "dt", "dd", "dl", "ol", "ul", "hr"}
BLOCK_TAGS |= {"address", "main", "nav", "caption", "body"}
SKIP_TAGS = frozenset({"script", "style", "head", "template"})
IMAGE_TAGS = frozenset({"img", "svg", "image", "picture", "object", "video", "audio", "canvas", "embed"})
NOTE_TYPES = frozenset({"footnote", "footnotes", "endnote", "endnotes", "rearnote", "rearnotes", "note"})
NOTE_ROLES = frozenset({"doc-footnote", "doc-endnote", "doc-endnotes"})
NOTE_CLASSES = frozenset({"footnote", "footnotes", "endnote", "endnotes"})
BACKLINK_TYPES = frozenset({"backlink", "referrer", "doc-backlink"})
BACKLINK_TEXTS = frozenset({"↩", "↩︎", "↑", "^", "⤴", "[back]", "back"})
_MARKER_TEXT = re.compile(r"^[\[(]?(?:\d{1,4}[a-z]?|[a-z]|[*†‡§¶#]+)[\])]?$", re.IGNORECASE)
_MARKER_PUNCT = "[](),; \u00a0"


@dataclass(frozen=True)
class Block:
    """A paragraph, heading or note of a document, with the ids of elements that start at it."""

    kind: str  # "text", "heading" or "note"
    text: str
    anchors: tuple[str, ...] = ()


def parse_markup(data: bytes, name: str, path: Path, html: bool = False):  # -> lxml element
    """Parse XML (no entities resolved, no network); with `html`, fall back to the HTML parser,
    which knows `&nbsp;` and friends and forgives broken markup."""
    from lxml import etree
    from lxml import html as lxml_html

    try:
        return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        if not html:
            raise InputDecodeError(f"{path}: {name} is not well-formed XML ({exc})") from exc
    try:
        return lxml_html.document_fromstring(data)
    except (etree.ParserError, ValueError) as exc:
        raise InputDecodeError(f"{path}: cannot parse {name} ({exc})") from exc


def resolve_href(base: str, href: str) -> tuple[str, str | None]:
    target, _, fragment = href.partition("#")
    doc = posixpath.normpath(posixpath.join(base, unquote(target))) if target else ""
    return doc, unquote(fragment) or None


# --- text -------------------------------------------------------------------


def all_named(root, name: str) -> list:
    """Every element under `root` (itself included) whose local tag name is `name`."""
    return [el for el in root.iter() if local_name(el) == name]


def local_name(el) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1].lower()


def tokens(el, attribute: str) -> frozenset[str]:
    return frozenset(el.get(attribute, "").lower().split())


def types_of(el) -> frozenset[str]:
    """epub:type and ARIA role tokens of an element, lowercase."""
    return frozenset().union(*(tokens(el, attr) for attr in (*_TYPE_ATTRS, "role")))


def text_of(el) -> str:
    return " ".join(without_terminal_controls("".join(el.itertext())).split())


def is_note(el) -> bool:
    noted = types_of(el) & (NOTE_TYPES | NOTE_ROLES) or tokens(el, "class") & NOTE_CLASSES
    return bool(noted) and local_name(el) not in ("a", "sup")


def note_ids(root) -> set[str]:
    ids: set[str] = set()
    for el in root.iter():
        if isinstance(el.tag, str) and is_note(el):
            ids.update(node.get("id") for node in el.iter() if isinstance(node.tag, str) and node.get("id"))
    return ids


class DocumentWalker:
    """Turns one XHTML document into blocks: paragraphs, headings and notes, with anchor ids."""

    def __init__(self, doc: str, note_ids: set[tuple[str, str]], dropped: Counter[str]) -> None:
        self.doc = doc
        self.note_ids = note_ids
        self.dropped = dropped
        self.blocks: list[Block] = []
        self._parts: list[str] = []
        self._anchors: list[str] = []

    def blocks_of(self, root) -> list[Block]:
        body = root.find(".//{*}body")
        try:
            self._walk(body if body is not None else root, in_note=False)
        except RecursionError as exc:
            raise InputDecodeError(f"{self.doc}: the document is nested too deeply to read") from exc
        self._flush("text")
        return self.blocks

    def _walk(self, el, in_note: bool) -> None:
        tag = local_name(el)
        if tag in SKIP_TAGS:
            return
        if tag in IMAGE_TAGS:
            self.dropped[IMAGE] += 1
            return
        if self._is_noteref(el):
            self.dropped[FOOTNOTE_MARKER] += 1
            return
        if in_note and tag == "a" and self._is_backlink(el):
            return
        if not in_note and is_note(el):
            self._note(el)
            return
        if el.get("id"):
            self._anchors.append(el.get("id"))
        block = tag in BLOCK_TAGS
        if block:
            self._flush("note" if in_note else "text")
        self._parts.append(" " if tag == "br" else el.text or "")
        for child in el:
            if isinstance(child.tag, str):
                self._walk(child, in_note)
            self._parts.append(child.tail or "")
        if block:
            self._flush("heading" if tag in HEADING_TAGS else "note" if in_note else "text")

    def _note(self, el) -> None:
        self._flush("text")
        inner = DocumentWalker(self.doc, self.note_ids, self.dropped)
        inner._walk(el, in_note=True)
        inner._flush("note")
        self.blocks.extend(inner.blocks)

    def _flush(self, kind: str) -> None:
        text, removed = remove_terminal_controls("".join(self._parts))
        if removed:
            self.dropped[CONTROL_CHARACTER] += removed
        text = " ".join(text.split())
        self._parts = []
        if text:
            self.blocks.append(Block(kind, text, tuple(self._anchors)))
            self._anchors = []

    def _is_noteref(self, el) -> bool:
        tag = local_name(el)
        if tag == "sup":
            links = all_named(el, "a")
            outside = text_of(el)
            for link in links:
                outside = outside.replace(text_of(link), "", 1)
            return (
                bool(links)
                and all(self._is_link_ref(a, in_sup=True) for a in links)
                and not outside.strip(_MARKER_PUNCT)
            )
        return tag == "a" and self._is_link_ref(el, in_sup=False)

    def _is_link_ref(self, link, in_sup: bool) -> bool:
        if types_of(link) & {"noteref", "doc-noteref"}:
            return True
        doc, fragment = resolve_href(posixpath.dirname(self.doc), link.get("href", ""))
        target = (doc or self.doc, fragment)
        marker = bool(_MARKER_TEXT.match(text_of(link)))
        return marker and fragment is not None and (in_sup or target in self.note_ids)

    @staticmethod
    def _is_backlink(link) -> bool:
        return bool(types_of(link) & BACKLINK_TYPES) or text_of(link).lower() in BACKLINK_TEXTS
