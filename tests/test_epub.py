"""EPUB input: reading order, nested contents, footnotes, front matter, and no text lost."""

from __future__ import annotations

import re
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from llasa_cli.errors import InputDecodeError, InputEmptyError, InputIsDirectoryError, InputNotFoundError
from llasa_cli.options import TextOptions
from llasa_cli.text import epub_archive
from llasa_cli.text.chapters import split_chapters
from llasa_cli.text.epub import IMAGE, NOTES_HEADING, epub_to_manuscript_text, markdown_escape, read_epub
from llasa_cli.text.epub_archive import MAX_ENTRY_BYTES
from llasa_cli.text.epub_xhtml import FOOTNOTE_MARKER
from llasa_cli.text.manuscript import manuscript_from_text
from llasa_cli.text.normalize import markdown_paragraphs
from llasa_cli.text.planner import build_plan

epub = pytest.importorskip("ebooklib.epub")

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)

CH1_BODY = (
    "<h1>Chapter 1: The Storm</h1>"
    '<p>Rain fell on the <em>old</em> harbour<a epub:type="noteref" href="#fn1">1</a> all night.</p>'
    '<p><img src="pic.png" alt="a boat"/>Use *stars*, _lines_, &lt;angles&gt; &amp; [brackets] #tags.</p>'
    "<p>1984. It was a year like any other.</p>"
    "<p>- a line that starts with a dash</p>"
    '<aside epub:type="footnote" id="fn1"><p>The harbour was built in 1802.</p></aside>'
    "<p>The keeper<br/>climbed the stairs.</p>"
)
CH2_BODY = (
    '<section id="s1"><h2>Section A</h2><p>First part<sup><a href="#n2">2</a></sup> of two.</p></section>'
    '<section id="s2"><h2>Section B</h2><p>Second part of two.</p>'
    '<div class="footnote" id="n2"><p>Kept at the end. <a href="#r2">↩</a></p></div></section>'
)
CH3_BODY = "<h1>Chapter 3</h1><p>Home at last; the end.</p><ul><li>One item</li><li>Two items</li></ul>"
PART1_BODY = "<h1>Part One</h1>"
PART2_BODY = "<h1>Part Two</h1><p>In which things end.</p>"
COPYRIGHT_BODY = "<p>Copyright © 2024 A. Writer. All rights reserved.</p><p>ISBN 978-0-00-000000-0</p>"
TITLE_BODY = "<h1>The Lighthouse</h1><p>A. Writer</p>"
HALF_TITLE_BODY = '<section epub:type="halftitlepage"><p>The Lighthouse, a novel in three moods</p></section>'

# What a listener should hear, in order: chapter titles, paragraphs, then each chapter's notes.
EXPECTED_CHAPTERS = [
    ("Part One", []),
    (
        "Chapter 1: The Storm",
        [
            "Rain fell on the old harbour all night.",
            "Use *stars*, _lines_, <angles> & [brackets] #tags.",
            "1984. It was a year like any other.",
            "- a line that starts with a dash",
            "The keeper climbed the stairs.",
            NOTES_HEADING,
            "The harbour was built in 1802.",
        ],
    ),
    (
        "Chapter 2",
        ["Section A", "First part of two.", "Section B", "Second part of two.", NOTES_HEADING, "Kept at the end."],
    ),
    ("Part Two", ["In which things end."]),
    ("Chapter 3", ["Home at last; the end.", "One item", "Two items"]),
]


def _html(uid: str, name: str, title: str, body: str) -> epub.EpubHtml:
    page = epub.EpubHtml(uid=uid, file_name=name, title=title, lang="en")
    page.content = f"<html><head><title>{title}</title></head><body>{body}</body></html>"
    return page


def build_book(path: Path, with_front_matter: bool = True, with_nav: bool = True) -> Path:
    book = epub.EpubBook()
    book.set_identifier("test-book")
    book.set_title("The Lighthouse")
    book.set_language("en")
    book.add_author("A. Writer")
    book.set_cover("cover.png", PNG)
    pages = {
        "title": _html("title", "titlepage.xhtml", "Title", TITLE_BODY),
        "copyright": _html("copyright", "rights.xhtml", "Rights", COPYRIGHT_BODY),
        "opening": _html("opening", "opening.xhtml", "Opening", HALF_TITLE_BODY),
        "part1": _html("part1", "part1.xhtml", "Part One", PART1_BODY),
        "ch1": _html("ch1", "ch1.xhtml", "Chapter 1", CH1_BODY),
        "ch2": _html("ch2", "ch2.xhtml", "Chapter 2", CH2_BODY),
        "part2": _html("part2", "part2.xhtml", "Part Two", PART2_BODY),
        "ch3": _html("ch3", "ch3.xhtml", "Chapter 3", CH3_BODY),
    }
    for page in pages.values():
        book.add_item(page)
    book.add_item(epub.EpubItem(uid="pic", file_name="pic.png", media_type="image/png", content=PNG))
    book.toc = [
        (
            epub.Section("Part One", href="part1.xhtml"),
            [
                epub.Link("ch1.xhtml", "Chapter 1", "c1"),
                (
                    epub.Section("Chapter 2", href="ch2.xhtml"),
                    [epub.Link("ch2.xhtml#s1", "Section A", "s1"), epub.Link("ch2.xhtml#s2", "Section B", "s2")],
                ),
            ],
        ),
        (epub.Section("Part Two", href="part2.xhtml"), [epub.Link("ch3.xhtml", "Chapter 3", "c3")]),
    ]
    book.add_item(epub.EpubNcx())
    if with_nav:
        book.add_item(epub.EpubNav())
    front = ["cover", pages["title"], pages["copyright"], pages["opening"]] if with_front_matter else []
    front += ["nav"] if with_front_matter and with_nav else []
    body = [pages[key] for key in ("part1", "ch1", "ch2", "part2", "ch3")]
    book.spine = front + body
    epub.write_epub(str(path), book)
    return path


def words(text: str) -> list[str]:
    return text.split()


def manuscript_view(text: str) -> list[tuple[str | None, list[str]]]:
    """What the existing text pipeline reads from the manuscript: chapter titles and paragraphs."""
    chapters = split_chapters(text, True, TextOptions())
    return [(chapter.title, markdown_paragraphs(chapter.body, Counter())) for chapter in chapters]


@pytest.fixture(scope="module")
def book_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_book(tmp_path_factory.mktemp("epub") / "book.epub")


def test_chapters_follow_nested_contents_and_skip_front_matter(book_path):
    book = read_epub(book_path)
    assert book.title == "The Lighthouse"
    assert book.authors == ("A. Writer",)
    assert [c.title for c in book.chapters] == [title for title, _ in EXPECTED_CHAPTERS]
    assert [c.level for c in book.chapters] == [1, 2, 2, 1, 2]
    skipped = " ".join(book.skipped)
    assert "titlepage.xhtml (title page)" in skipped and "rights.xhtml (copyright page)" in skipped
    assert "opening.xhtml (title page)" in skipped and "nav.xhtml (table of contents)" in skipped
    assert "cover.xhtml (cover)" in skipped
    assert book.cover_image == PNG and book.cover_media_type == "image/png"
    assert book.dropped[IMAGE] == 1
    assert book.dropped[FOOTNOTE_MARKER] == 2
    assert any("dropped" in warning for warning in book.warnings)


def test_no_text_lost_through_the_manuscript(book_path):
    text = epub_to_manuscript_text(read_epub(book_path))
    view = manuscript_view(text)
    assert [(title, paragraphs) for title, paragraphs in view] == EXPECTED_CHAPTERS
    expected_words = [w for title, paragraphs in EXPECTED_CHAPTERS for w in words(title) + words(" ".join(paragraphs))]
    got_words = [w for title, paragraphs in view for w in words(title or "") + words(" ".join(paragraphs))]
    assert got_words == expected_words  # every word once, in order
    assert "Copyright" not in text and "harbour1" not in text
    plan = build_plan(manuscript_from_text(text, "book.epub", is_markdown=True), TextOptions())
    assert [chapter.title for chapter in plan.chapters] == [title for title, _ in EXPECTED_CHAPTERS]


def test_front_matter_kept_with_flag(book_path):
    book = read_epub(book_path, keep_front_matter=True)
    text = epub_to_manuscript_text(book)
    assert book.skipped == ()
    assert "All rights reserved" in text and "A. Writer" in text
    titles = [c.title for c in book.chapters]
    assert titles[0] == "The Lighthouse"  # the title page's heading
    assert titles[-5:] == [title for title, _ in EXPECTED_CHAPTERS]


def test_deeper_contents_levels_become_chapters_when_asked(book_path):
    book = read_epub(book_path, toc_depth=3)
    titles = [c.title for c in book.chapters]
    assert titles[2:5] == ["Chapter 2", "Section A", "Section B"]
    assert book.chapters[2].paragraphs == ()
    assert book.chapters[4].notes == ("Kept at the end.",)


def test_ncx_contents_without_nav_document(tmp_path):
    book = read_epub(build_book(tmp_path / "ncx.epub", with_nav=False))
    assert [(c.title, c.level) for c in book.chapters] == [
        (title, level) for (title, _), level in zip(EXPECTED_CHAPTERS, [1, 2, 2, 1, 2], strict=True)
    ]


def test_html_entities_and_broken_markup_fall_back_to_the_html_parser(tmp_path, book_path):
    with zipfile.ZipFile(book_path) as source:
        files = {name: source.read(name) for name in source.namelist()}
    name = next(name for name in files if name.endswith("ch3.xhtml"))
    files[name] = (
        b'<?xml version="1.0"?><!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" '
        b'"http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd"><html xmlns="http://www.w3.org/1999/xhtml">'
        b"<body><h1>Chapter 3</h1><p>Home&nbsp;at&#160;last&mdash;the end.<br></p></body></html>"
    )
    book = read_epub(_zip(tmp_path / "entities.epub", files))
    assert book.chapters[-1].paragraphs == ("Home at last\u2014the end.",)  # no-break spaces become spaces


def test_front_matter_text_in_manuscript_is_parsed_by_metadata(book_path):
    from llasa_cli.text.metadata import parse_front_matter

    text = epub_to_manuscript_text(read_epub(book_path), front_matter=True)
    fields, body = parse_front_matter(text)
    assert fields == {"title": "The Lighthouse", "author": "A. Writer"}
    assert body.lstrip().startswith("# Part One")


def test_book_without_contents_makes_a_chapter_per_document(tmp_path):
    path = tmp_path / "flat.epub"
    book = epub.EpubBook()
    book.set_identifier("flat")
    book.set_title("Flat")
    pages = [_html(f"d{n}", f"doc{n}.xhtml", f"Doc {n}", f"<h2>Heading {n}</h2><p>Body {n}.</p>") for n in (1, 2)]
    for page in pages:
        book.add_item(page)
    book.add_item(epub.EpubNcx())
    book.spine = pages
    epub.write_epub(str(path), book)
    read = read_epub(path)
    expected = [("Heading 1", ("Body 1.",)), ("Heading 2", ("Body 2.",))]
    assert [(c.title, c.paragraphs) for c in read.chapters] == expected


def test_markdown_escape_reads_back_literally():
    samples = ["a *b* _c_ `d` <e> & [f](g) #h | ~~i~~ \\j", "1. not a list", "+ plus", "> quote", "## not heading"]
    for sample in samples:
        paragraphs = markdown_paragraphs(markdown_escape(sample), Counter())
        assert paragraphs == [sample]


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def test_errors_are_domain_errors(tmp_path, book_path):
    with pytest.raises(InputNotFoundError):
        read_epub(tmp_path / "missing.epub")
    with pytest.raises(InputIsDirectoryError):
        read_epub(tmp_path)
    (tmp_path / "text.epub").write_text("just text")
    with pytest.raises(InputDecodeError, match="not a ZIP"):
        read_epub(tmp_path / "text.epub")
    with zipfile.ZipFile(book_path) as source:
        files = {name: source.read(name) for name in source.namelist()}
    encryption = (
        b'<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        b'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        b'<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
        b"</enc:EncryptedData></encryption>"
    )
    with pytest.raises(InputDecodeError, match="DRM"):
        read_epub(_zip(tmp_path / "drm.epub", {**files, "META-INF/encryption.xml": encryption}))
    font_only = encryption.replace(
        b"http://www.w3.org/2001/04/xmlenc#aes128-cbc", b"http://www.idpf.org/2008/embedding"
    )
    assert read_epub(_zip(tmp_path / "fonts.epub", {**files, "META-INF/encryption.xml": font_only})).chapters
    opf_name = next(name for name in files if name.endswith(".opf"))
    no_spine = re.sub(rb"<spine[^>]*>.*</spine>", b"<spine></spine>", files[opf_name], flags=re.S)
    with pytest.raises(InputDecodeError, match="spine"):
        read_epub(_zip(tmp_path / "nospine.epub", {**files, opf_name: no_spine}))
    with pytest.raises(InputDecodeError):
        read_epub(_zip(tmp_path / "empty.epub", {"mimetype": b"application/epub+zip"}))


def test_book_of_images_only_is_empty(tmp_path):
    path = tmp_path / "pictures.epub"
    book = epub.EpubBook()
    book.set_identifier("pics")
    book.set_title("Pictures")
    page = _html("p1", "p1.xhtml", "Pictures", '<p><img src="pic.png" alt=""/></p>')
    book.add_item(page)
    book.add_item(epub.EpubNcx())
    book.spine = [page]
    epub.write_epub(str(path), book)
    with pytest.raises(InputEmptyError):
        read_epub(path)


def _title_page_book(path: Path, title_file: str, title_label: str | None, chapter_in_title_doc: bool = False) -> Path:
    """A title page, then one chapter; the title page may be in the contents under `title_label`."""
    book = epub.EpubBook()
    book.set_identifier("title-page")
    book.set_title("The Lighthouse")
    title_body = "<h1>The Lighthouse</h1><p>A. Writer</p>"
    if chapter_in_title_doc:
        title_body += '<h2 id="c0">Chapter 0</h2><p>Before the first chapter.</p>'
    title = _html("title", title_file, "Title", title_body)
    chapter = _html("c1", "chapter1.xhtml", "Chapter 1", "<h1>Chapter 1</h1><p>Rain fell.</p>")
    for page in (title, chapter):
        book.add_item(page)
    toc = [epub.Link(title_file, title_label, "tp")] if title_label else []
    if chapter_in_title_doc:
        toc.append(epub.Link(f"{title_file}#c0", "Chapter 0", "c0"))
    book.toc = [*toc, epub.Link("chapter1.xhtml", "Chapter 1", "c1")]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = [title, "nav", chapter]
    epub.write_epub(str(path), book)
    return path


@pytest.mark.parametrize(
    ("title_file", "label"),
    [
        ("title.xhtml", "Title Page"),
        ("front.xhtml", "Title Page"),
        ("front.xhtml", "title-page"),
        ("title.xhtml", None),
    ],
)
def test_a_title_page_found_by_its_contents_label_or_file_name_is_front_matter(tmp_path, title_file, label):
    book = read_epub(_title_page_book(tmp_path / "book.epub", title_file, label))
    assert [chapter.title for chapter in book.chapters] == ["Chapter 1"]
    assert f"{title_file} (title page)" in book.skipped
    kept = read_epub(tmp_path / "book.epub", keep_front_matter=True)
    assert "A. Writer" in kept.chapters[0].paragraphs


def test_a_document_that_also_holds_a_chapter_entry_is_content(tmp_path):
    book = read_epub(_title_page_book(tmp_path / "book.epub", "front.xhtml", "Title Page", chapter_in_title_doc=True))
    assert [chapter.title for chapter in book.chapters] == ["Title Page", "Chapter 0", "Chapter 1"]


def test_a_zip_bomb_entry_is_refused_without_reading_it_whole(tmp_path, book_path):
    with zipfile.ZipFile(book_path) as source:
        files = {name: source.read(name) for name in source.namelist()}
    name = next(name for name in files if name.endswith("ch3.xhtml"))
    bomb = tmp_path / "bomb.epub"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry, data in files.items():
            archive.writestr(entry, b" " * (MAX_ENTRY_BYTES + 1) if entry == name else data)
    assert bomb.stat().st_size < MAX_ENTRY_BYTES // 100
    with pytest.raises(InputDecodeError, match=r"ch3.xhtml inflates to over 32 MiB"):
        read_epub(bomb)


def test_all_entries_together_are_capped(monkeypatch, book_path):
    monkeypatch.setattr(epub_archive, "MAX_TOTAL_BYTES", 2_000)
    with pytest.raises(InputDecodeError, match="the EPUB inflates to over"):
        read_epub(book_path)


def test_an_entry_whose_header_lies_about_its_size_is_refused(tmp_path, book_path):
    data = book_path.read_bytes()
    with zipfile.ZipFile(book_path) as source:
        info = next(info for info in source.infolist() if info.filename.endswith("ch3.xhtml"))
    crc_and_packed = info.CRC.to_bytes(4, "little") + info.compress_size.to_bytes(4, "little")
    # The size follows the CRC and packed size in the local header and in the central directory: both claim 10.
    lying = data.replace(crc_and_packed + info.file_size.to_bytes(4, "little"), crc_and_packed + bytes([10, 0, 0, 0]))
    assert lying != data
    (tmp_path / "lying.epub").write_bytes(lying)
    with pytest.raises(InputDecodeError, match="cannot read the EPUB archive"):
        read_epub(tmp_path / "lying.epub")


def test_control_characters_in_epub_text_are_dropped_and_counted(tmp_path, book_path):
    with zipfile.ZipFile(book_path) as source:
        files = {name: source.read(name) for name in source.namelist()}
    name = next(name for name in files if name.endswith("ch3.xhtml"))
    files[name] = files[name].replace(b"Home at last", b"Home &#27;[31mat last")
    book = read_epub(_zip(tmp_path / "controls.epub", files))
    assert book.chapters[-1].paragraphs[0] == "Home at last; the end."
