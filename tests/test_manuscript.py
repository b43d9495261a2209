"""Reading manuscripts: decoding, newlines, Markdown detection, and every kind of bad input."""

from __future__ import annotations

import codecs
import io
import sys
from pathlib import Path

import pytest

from llasa_cli.errors import (
    InputBinaryError,
    InputDecodeError,
    InputEmptyError,
    InputIsDirectoryError,
    InputNotFoundError,
    InvalidOptionError,
)
from llasa_cli.text.manuscript import Manuscript, manuscript_from_text, read_manuscript


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_utf8_text_file(tmp_path: Path) -> None:
    path = write(tmp_path, "book.txt", "Café au lait.\n".encode())
    assert read_manuscript(path) == Manuscript(name=path, text="Café au lait.\n", is_markdown=False)


def test_utf8_bom_is_removed(tmp_path: Path) -> None:
    path = write(tmp_path, "book.txt", codecs.BOM_UTF8 + b"Hello.")
    assert read_manuscript(path).text == "Hello."


def test_utf16_with_bom_is_decoded(tmp_path: Path) -> None:
    path = write(tmp_path, "book.txt", "Hello, wörld.".encode("utf-16"))
    assert read_manuscript(path).text == "Hello, wörld."


@pytest.mark.parametrize("raw", [b"one\r\ntwo\r\n\r\nthree", b"one\rtwo\r\rthree", b"one\r\ntwo\r\rthree"])
def test_crlf_and_lone_cr_become_lf(tmp_path: Path, raw: bytes) -> None:
    text = read_manuscript(write(tmp_path, "book.txt", raw)).text
    assert "\r" not in text
    assert text.replace("\n\n", "\n") == "one\ntwo\nthree"


def test_other_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, "book.txt", "Café – naïve".encode("cp1252"))
    assert read_manuscript(path, encoding="cp1252").text == "Café – naïve"


@pytest.mark.parametrize(("name", "markdown"), [("a.md", True), ("a.MARKDOWN", True), ("a.txt", False), ("a", False)])
def test_markdown_by_suffix(tmp_path: Path, name: str, markdown: bool) -> None:
    assert read_manuscript(write(tmp_path, name, b"Plain words.")).is_markdown is markdown


@pytest.mark.parametrize(
    ("data", "markdown"),
    [(b"Intro\n\n# Chapter\n\nText", True), (b"## Two\ntext", True), (b"No #heading here\n#hashtag", False)],
)
def test_stdin_is_markdown_when_it_has_an_atx_heading(data: bytes, markdown: bool) -> None:
    manuscript = read_manuscript("-", stdin=io.BytesIO(data))
    assert manuscript.name == "<stdin>"
    assert manuscript.is_markdown is markdown


def test_stdin_defaults_to_sys_stdin_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = io.TextIOWrapper(io.BytesIO(b"From a pipe.\r\n"), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", fake)
    assert read_manuscript("-").text == "From a pipe.\n"


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.txt")
    with pytest.raises(InputNotFoundError, match="nope.txt: no such file"):
        read_manuscript(path)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputIsDirectoryError, match=f"{tmp_path.name}: is a directory"):
        read_manuscript(str(tmp_path))


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "secret.txt", b"words")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    # Simulated: tests may run as root, which can read any file.
    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(InputNotFoundError, match="secret.txt: permission denied"):
        read_manuscript(path)


def test_undecodable_bytes_name_file_offset_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path, "old.txt", b"caf\xe9 noir")
    with pytest.raises(InputDecodeError) as caught:
        read_manuscript(path)
    message = str(caught.value)
    assert "old.txt" in message
    assert "byte offset 3" in message
    assert "0xe9" in message
    assert "--encoding cp1252" in message
    assert "\n" not in message


def test_decode_offset_counts_the_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "bom.txt", codecs.BOM_UTF8 + b"ab\xff")
    with pytest.raises(InputDecodeError, match="byte offset 5"):
        read_manuscript(path)


def test_decode_error_with_explicit_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, "x.txt", "naïve".encode())
    with pytest.raises(
        InputDecodeError, match=r"x.txt: cannot decode as ascii at byte offset 2 .*different --encoding"
    ):
        read_manuscript(path, encoding="ascii")


def test_stdin_decode_error_names_stdin() -> None:
    with pytest.raises(InputDecodeError, match="<stdin>: .*byte offset 0"):
        read_manuscript("-", stdin=io.BytesIO(b"\x81abc"))


@pytest.mark.parametrize("encoding", ["no-such-codec", "base64"])
def test_unknown_or_non_text_encoding(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path, "a.txt", b"words")
    with pytest.raises(InvalidOptionError, match=encoding):
        read_manuscript(path, encoding=encoding)


def test_binary_file(tmp_path: Path) -> None:
    path = write(tmp_path, "image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(InputBinaryError, match=r"image.png: looks like a binary file.*offset 8"):
        read_manuscript(path)


def test_nul_after_explicit_decoding_is_binary(tmp_path: Path) -> None:
    path = write(tmp_path, "a.txt", "ab\x00cd".encode("utf-16-le"))
    with pytest.raises(InputBinaryError, match="a.txt"):
        read_manuscript(path, encoding="utf-16-le")


@pytest.mark.parametrize("data", [b"", b" \n\t\r\n  ", codecs.BOM_UTF8, codecs.BOM_UTF8 + b"\n\n"])
def test_empty_or_whitespace_only(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, "empty.txt", data)
    with pytest.raises(InputEmptyError, match="empty.txt: the manuscript is empty"):
        read_manuscript(path)


def test_empty_stdin() -> None:
    with pytest.raises(InputEmptyError, match="<stdin>"):
        read_manuscript("-", stdin=io.BytesIO(b"   \n"))


def test_manuscript_from_text() -> None:
    assert manuscript_from_text("a\r\nb") == Manuscript(name="<text>", text="a\nb", is_markdown=False)
    with pytest.raises(InputEmptyError, match="<text>"):
        manuscript_from_text(" \n ")
