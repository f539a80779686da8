"""repair_mojibake: exact recovery when no byte was lost, U+FFFD exactly where one was."""

from __future__ import annotations

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


def test_two_megabytes_of_mojibake_repair_quickly():
    import time

    text = "Le cœur a ses raisons — déjà vu, naïve façade, 中文.\n" * 36_000
    moji = text.encode().decode("cp1252")
    t0 = time.perf_counter()
    repairs: list[str] = []
    assert repair_mojibake(moji, repairs) == text
    assert time.perf_counter() - t0 < 5.0  # about 0.3 s on an idle core
    places = sum(1 for c in text if ord(c) > 127)
    assert repairs == [f"fixed mojibake (UTF-8 read as Windows-1252) in {places:,} places"]
