"""repair_mojibake: exact recovery when no byte was lost, U+FFFD exactly where one was."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcore.data.mojibake import repair_mojibake

UNDEFINED_1252 = {0x81, 0x8D, 0x8F, 0x90, 0x9D}
# characters outside the Latin-1 and Windows-1252 repertoires: text made of them cannot itself
# look like mojibake, so one layer of repair must give it back exactly
_IMAGES = {chr(b) for b in range(0x80, 0x100)} | {
    bytes([b]).decode("cp1252") for b in range(0x80, 0xA0) if b not in UNDEFINED_1252}
CLEAN = st.text(st.characters(exclude_categories=("Cs",), exclude_characters=_IMAGES),
                max_size=80)


def _lossy(text: str) -> str:
    return "".join("\ufffd" if set(c.encode()) & UNDEFINED_1252 else c for c in text)


def test_ascii_and_clean_text_untouched():
    for text in ("plain ASCII", "中文 Ελληνικά русский 😀", "café, naïve, Größe", ""):
        repairs: list[str] = []
        assert repair_mojibake(text, repairs) == text
        assert repairs == []


@settings(max_examples=200, deadline=None)
@given(CLEAN)
def test_latin1_mojibake_is_undone_exactly(text):
    repairs: list[str] = []
    assert repair_mojibake(text.encode().decode("latin-1"), repairs) == text
    assert bool(repairs) == (not text.isascii())
    assert not any("could not be recovered" in r for r in repairs)


@settings(max_examples=200, deadline=None)
@given(CLEAN)
def test_cp1252_mojibake_with_replaced_bytes_marks_exactly_the_lost_characters(text):
    repairs: list[str] = []
    fixed = repair_mojibake(text.encode().decode("cp1252", "replace"), repairs)
    assert fixed == _lossy(text)
    lost = sum(1 for a, b in zip(text, fixed, strict=True) if a != b)
    if lost:
        word = "character" if lost == 1 else "characters"
        assert any(r.startswith(f"{lost:,} {word} could not be recovered") for r in repairs)


def test_c1_next_line_character_is_a_byte_not_a_line_break():
    text = "Åsa och Ärlig\n"  # Å = C3 85: a Latin-1 reader gives U+0085 (NEXT LINE)
    moji = text.encode().decode("latin-1")
    assert "\x85" in moji
    assert repair_mojibake(moji, []) == text


def test_dropped_bytes_with_a_counted_report():
    text = "Íñigo met 丁 at the café\n"  # Í = C3 8D and 丁 = E4 B8 81 each hold a lost byte
    repairs: list[str] = []
    fixed = repair_mojibake(text.encode().decode("cp1252", "ignore"), repairs)
    assert fixed == "\ufffdñigo met \ufffd at the café\n"
    assert repairs[0] == "fixed mojibake (UTF-8 read as Windows-1252 or Latin-1) in 2 places"
    assert repairs[1].startswith("2 characters could not be recovered")


def test_ftfy_handles_what_the_byte_pass_leaves():
    repairs: list[str] = []
    # UTF-8 read as MacRoman: not our Windows-1252/Latin-1 pass, but ftfy knows it
    moji = "déjà vu, naïve café".encode().decode("mac_roman")
    fixed = repair_mojibake(moji, repairs)
    assert fixed == "déjà vu, naïve café"
    assert any("ftfy" in r for r in repairs)


_IMAGE_OR_ANY = st.one_of(
    st.characters(min_codepoint=0x80, max_codepoint=0xFF),
    st.sampled_from(sorted(_IMAGES)),
    st.characters(exclude_categories=("Cs",)),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(_IMAGE_OR_ANY, max_size=40),
                 CLEAN.map(lambda t: t.encode().decode("latin-1"))))
def test_fast_path_agrees_with_the_careful_scan(line):
    from lmcore.data.mojibake import _fast, _scan, _Stats

    fast = _fast(line)
    if fast is None:
        return  # something was lost or does not decode: only the scan handles that
    stats = _Stats()
    assert _scan(line, mark_lone=False, stats=stats) == fast[0]
    assert (stats.valid, stats.orphan, stats.lone, stats.broken) == (fast[1].valid, 0, 0, 0)


def _question_marks(text: str) -> str:
    """UTF-8 read as Windows-1252 by a tool that writes '?' for the bytes it cannot map."""
    return text.encode().decode("cp1252", "replace").replace("\ufffd", "?")


_LOST_AFTER_C3 = "ÁÍÏÐÝ"  # C3 81 / 8D / 8F / 90 / 9D: the second byte is undefined in cp1252


def _spanish_line(n_words: int = 400, seed: int = 7) -> str:
    """A long generated Spanish line with capitals whose second UTF-8 byte cp1252 lacks."""
    import random

    rng = random.Random(seed)
    words = ["Álvaro", "Ávila", "Íñigo", "Ídolo", "ÝAGO", "ÐORA", "ÏSOLA", "niño", "está",
             "canción", "después", "año", "música", "pequeño", "corazón", "señor", "qué",
             "el", "la", "de", "que", "y", "en", "un", "por", "con", "para", "?", "¿cómo?"]
    return " ".join(rng.choice(words) for _ in range(n_words)) + ".\n"


def test_question_mark_after_a_lead_on_a_mojibake_line_is_the_lost_byte():
    line = _spanish_line()
    moji = _question_marks(line)
    assert "Ã?" in moji and "Ã\u2030" not in moji
    repairs: list[str] = []
    fixed = repair_mojibake(moji, repairs)
    lost = sum(line.count(c) for c in _LOST_AFTER_C3)
    assert lost > 20
    assert fixed == "".join("\ufffd" if c in _LOST_AFTER_C3 else c for c in line)
    assert "?" not in fixed.replace(" ? ", "").replace("¿cómo?", "")  # no stray '?' left
    assert fixed.count("?") == line.count("?")  # the real question marks are all kept
    recovered = sum(1 for c in line if ord(c) > 127 and c not in _LOST_AFTER_C3)
    assert repairs == [
        f"fixed mojibake (UTF-8 read as Windows-1252 or Latin-1) in {recovered:,} places",
        f"{lost:,} characters could not be recovered (bytes lost when the text was "
        f"mis-decoded) and are marked \ufffd; {lost:,} of them showed as a letter and \"?\" "
        "for a second byte the Windows-1252 reader could not map (\"Ã?\" was one of "
        "Á Í Ï Ð Ý)",
    ]


def test_alvaro_de_avila_keeps_no_stray_question_mark():
    line = "Don Álvaro de Ávila, señor de Íñigo, cantó una canción más.\n"
    repairs: list[str] = []
    fixed = repair_mojibake(_question_marks(line), repairs)
    assert fixed == "Don \ufffdlvaro de \ufffdvila, señor de \ufffdñigo, cantó una canción más.\n"
    assert repairs[1].startswith("3 characters could not be recovered")


def test_question_mark_after_a_lead_is_kept_where_nothing_says_mojibake():
    for text in ("IRMÃ? Sim, IRMÃ.\n", "Ã?lvaro\n"):  # real Latin-1 "Ã", or no evidence
        repairs: list[str] = []
        assert repair_mojibake(text, repairs) == text
        assert repairs == []


def test_question_mark_inside_a_three_byte_sequence_is_a_lost_byte():
    line = "I ❤ Paris — café, 丁 and ‘quotes’ again.\n"  # ❤ = E2 9D A4: '?' right after E2
    repairs: list[str] = []
    fixed = repair_mojibake(_question_marks(line), repairs)
    assert fixed == "I \ufffd Paris — café, \ufffd and ‘quotes’ again.\n"
    assert repairs[1].startswith("2 characters could not be recovered")


@settings(max_examples=200, deadline=None)
@given(CLEAN.filter(lambda t: "\n" not in t))
def test_question_mark_losses_on_a_mojibake_line_are_marked_exactly(text):
    line = text + " déjà vu"  # at least some recoverable mojibake on the line
    repairs: list[str] = []
    fixed = repair_mojibake(_question_marks(line), repairs)
    assert fixed == _lossy(line)
    lost = fixed.count("\ufffd") - line.count("\ufffd")
    if lost:
        word = "character" if lost == 1 else "characters"
        assert any(r.startswith(f"{lost:,} {word} could not be recovered") for r in repairs)


def test_ftfy_fix_reports_the_characters_it_marked_lost():
    # UTF-8 read as Windows-1251 with '?' for its undefined byte 0x98: ‘ = E2 80 98 is lost.
    # Not our Windows-1252 pass; ftfy undoes it and marks the lost quote with U+FFFD.
    line = "Он сказал ‘привет’ и ушёл домой, а потом вернулся.\n"
    moji = line.encode().decode("cp1251", "replace").replace("\ufffd", "?")
    repairs: list[str] = []
    fixed = repair_mojibake(moji, repairs)
    assert fixed == line.replace("‘", "\ufffd")
    assert repairs == ["fixed other encoding damage on 1 line (ftfy); 1 character could not "
                       "be recovered (bytes lost) and is marked \ufffd"]


class _Counter:
    """Wrap a function and count its calls."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


def test_two_megabytes_of_mojibake_take_the_fast_path_on_every_line(monkeypatch):
    # Speed by operation count, not by clock: lossless mojibake is decoded line by line in C
    # (_fast, once per line); the per-character Python scan and ftfy never run.
    import ftfy

    from lmcore.data import mojibake

    text = "Le cœur a ses raisons — déjà vu, naïve façade, 中文.\n" * 36_000
    moji = text.encode().decode("cp1252")
    assert len(moji.encode()) > 2_000_000
    fast = _Counter(mojibake._fast)
    monkeypatch.setattr(mojibake, "_fast", fast)
    for name in ("_scan", "_byte"):
        monkeypatch.setattr(mojibake, name, lambda *a, **k: pytest.fail("per-char Python"))
    monkeypatch.setattr(ftfy, "fix_encoding", lambda *a, **k: pytest.fail("ftfy ran"))
    repairs: list[str] = []
    assert repair_mojibake(moji, repairs) == text
    assert fast.calls == 36_000  # once per line; the check for a second layer needs none
    places = sum(1 for c in text if ord(c) > 127)
    assert repairs == [f"fixed mojibake (UTF-8 read as Windows-1252) in {places:,} places"]


def test_lossy_mojibake_costs_exactly_linear_work(monkeypatch):
    # Lines that lost bytes need the careful scan: its per-character work (calls of _byte)
    # grows exactly in proportion to the text, and stays a few calls per character.
    from lmcore.data import mojibake

    line = _spanish_line(60) + "Íñigo met 丁 at the café; ”end\n"
    calls = []
    for copies in (10, 1000):
        counter = _Counter(mojibake._byte)
        monkeypatch.setattr(mojibake, "_byte", counter)
        text = line * copies
        fixed = repair_mojibake(_question_marks(text), [])
        assert fixed == _lossy(text)
        calls.append(counter.calls)
    assert calls[0] > 0 and calls[1] == 100 * calls[0]
    assert calls[1] <= 4 * len(_question_marks(line * 1000))
