"""Repairs found in place: the spans a repair changed and the characters that were lost."""

from __future__ import annotations

from lmcore.data.corpus import load_text
from lmcore.data.repairs import repair_marks


def test_mojibake_repairs_are_located_with_what_stood_there():
    good = "Plain line one.\nCafé crème for Álvaro.\nAnother plain line.\n" * 3
    data = good.encode("utf-8").decode("latin-1").encode("utf-8")  # UTF-8 read as Latin-1
    c = load_text(data, "notes.txt")
    assert c.text == good and c.decoded is not None
    marks = repair_marks(c.text, c.decoded)
    fixed = [c.text[m.start:m.end] for m in marks if m.kind == "repaired"]
    assert fixed == ["é", "è", "Á"] * 3
    assert marks[0].before == "Ã©" and all(m.kind == "repaired" for m in marks)


def test_lost_characters_are_marked_and_clean_text_has_none():
    c = load_text(b"abc\r\ndef\r\n" + b"x\xe4\xb8 y\n" + "caf\u00e9 ok\n".encode() * 20,
                  "damaged.txt")
    lost = [m for m in repair_marks(c.text, c.decoded) if m.kind == "lost"]
    assert lost and all(c.text[m.start] == "\ufffd" for m in lost)
    clean = load_text(b"line one\r\nline two\r\n", "crlf.txt")
    assert clean.decoded is None  # only newlines changed: nothing to read in place
    assert repair_marks(clean.text, clean.decoded) == []
