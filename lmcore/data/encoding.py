"""Which encoding some bytes are in, and whether they are text at all.

BOMs first, then the magic numbers of binary formats, UTF-16/32 without a BOM when zero bytes
show it, UTF-8 (whole, cut off mid-character, or with a few damaged bytes), and last the legacy
codecs by charset-normalizer, with tie-breaks where short CJK and Western texts are ambiguous.
"""

from __future__ import annotations

import codecs
import re
import unicodedata


class NotTextError(ValueError):
    """The bytes are not text in any encoding we read; the message says what to do instead."""


_BOMS = (  # UTF-32 before UTF-16: the UTF-32-LE BOM begins with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)

_MAGIC = (  # (prefix, what it is, what to do)
    (b"\x89PNG\r\n\x1a\n", "a PNG image", "upload a plain-text file (.txt) instead"),
    (b"\xff\xd8\xff", "a JPEG image", "upload a plain-text file (.txt) instead"),
    (b"GIF87a", "a GIF image", "upload a plain-text file (.txt) instead"),
    (b"GIF89a", "a GIF image", "upload a plain-text file (.txt) instead"),
    (b"%PDF-", "a PDF document", "export or copy its text into a .txt file first"),
    (b"\x7fELF", "an ELF executable", "upload a plain-text file (.txt) instead"),
    (b"PK\x03\x04", "a ZIP archive (.docx, .xlsx, .epub and .odt files are ZIP archives too)",
     "extract it, or export the document as plain text (.txt) first"),
    (b"PK\x05\x06", "an empty ZIP archive", "upload a plain-text file (.txt) instead"),
    (b"\x1f\x8b", "a gzip archive", "decompress it first (gunzip {name})"),
    (b"\xfd7zXZ\x00", "an xz archive", "decompress it first (unxz {name})"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive", "decompress it first (unzstd {name})"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "extract it first (7z x {name})"),
    (b"Rar!\x1a\x07", "a RAR archive", "extract it first"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office document",
     "save it as plain text (.txt) first"),
    (b"SQLite format 3\x00", "an SQLite database", "upload a plain-text file (.txt) instead"),
)

_BZ2 = re.compile(rb"BZh[1-9]1AY&SY")


def _sniff_binary(data: bytes, name: str) -> None:
    """Reject known binary formats by their magic numbers, naming the format and the fix."""
    for magic, what, fix in _MAGIC:
        if data.startswith(magic):
            raise NotTextError(f"{name}: this looks like {what}, not text; "
                              + fix.format(name=name))
    if _BZ2.match(data):
        raise NotTextError(f"{name}: this looks like a bzip2 archive, not text; "
                          f"decompress it first (bunzip2 {name})")


def _decode_strict_or_replace(data: bytes, encoding: str, repairs: list[str]) -> str:
    """Decode; if some bytes are invalid, mark them with U+FFFD and say how many."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        text = data.decode(encoding, "replace")
        bad = text.count("\ufffd") - data.decode(encoding, "ignore").count("\ufffd")
        noun = "sequence" if bad == 1 else "sequences"
        repairs.append(f"{bad:,} invalid {encoding} byte {noun} (damaged bytes) marked \ufffd")
        return text


def _texty(text: str) -> float:
    """Share of characters that are letters, marks, digits, punctuation, symbols or spaces."""
    if not text:
        return 0.0
    ok = sum(1 for c in text if c in "\t\n\r" or unicodedata.category(c) not in _NOT_TEXT)
    return ok / len(text)


_NOT_TEXT = frozenset(("Cc", "Cs", "Co", "Cn"))  # controls, surrogates, private use, unassigned


def _utf16_32_without_bom(data: bytes) -> tuple[str, str] | None:
    """(text, codec) for UTF-32 or UTF-16 without a BOM when zero bytes make it evident.

    Zero bytes are the high bytes of ASCII (or the low bytes of U+xx00); among the byte orders
    that decode to text without NULs, the reading that looks most like text wins.
    """
    if 0 not in data or len(data) < 4:
        return None
    best, best_key = None, (0.97, -1.0)  # at least 97% text-like characters
    for enc, unit in (("utf-32-le", 4), ("utf-32-be", 4), ("utf-16-le", 2), ("utf-16-be", 2)):
        if len(data) % unit:
            continue
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            continue
        sample = text[:8192]
        ascii_share = sum(1 for c in sample if c < "\x7f") / len(sample)
        key = (round(_texty(sample), 3), ascii_share)  # ties: the reading with more ASCII
        if key >= best_key:
            best, best_key = (text, enc), key
            if unit == 4:
                break  # a strict UTF-32 decode that reads as text is trusted at once
    return best


_CJK_TEXT = re.compile("[\u3000-\u30ff\u4e00-\u9fff\uac00-\ud7a3\uff00-\uffef\n\r\t -~]")


def _cjk_utf16(data: bytes) -> str | None:
    """The codec for BOM-less UTF-16 CJK text, which has no zero bytes to give it away.

    Read as UTF-16, such text is nearly all ideographs, kana, Hangul and CJK punctuation.
    Shift-JIS or GBK bytes can read that way too, so this is asked only when no legacy
    codec fits the bytes.
    """
    if len(data) < 16 or len(data) % 2:
        return None
    for enc in ("utf-16-le", "utf-16-be"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        sample = text[:32768]
        if len(_CJK_TEXT.findall(sample)) >= 0.97 * len(sample):
            return enc
    return None


_LEGACY = ("gb18030", "big5", "shift_jis", "cp932", "euc_jp", "euc_kr", "cp1251", "koi8_r",
           "cp1252", "latin_1")  # the legacy codecs we consider, as charset-normalizer names
_REPORT = {"latin_1": "latin-1", "cp932": "shift_jis"}  # cp932 is Microsoft's Shift-JIS


def _western(data: bytes) -> bool:
    """Accented letters scattered one at a time among ASCII letters: Western European text.

    In CJK codecs every character is two bytes >= 0x80, so their high bytes come in pairs.
    """
    high = isolated = letters = 0
    prev_high = False
    for i, b in enumerate(data):
        if b >= 0x80:
            high += 1
            nxt = data[i + 1] if i + 1 < len(data) else 0
            isolated += not prev_high and nxt < 0x80
            prev_high = True
        else:
            letters += 97 <= (b | 0x20) <= 122
            prev_high = False
    if not (high > 0 and isolated >= 0.6 * high and high < letters):
        return False
    accented = sum(1 for c in data.decode("cp1252", "replace") if ord(c) > 127 and c.isalpha())
    return accented >= 0.8 * high  # and they read as letters (é, ß, œ), not symbols (¤, ±, ½)


def _korean(data: bytes, encoding: str) -> bool:
    """Decoded Hangul reads like Korean: words of a few syllables separated by spaces."""
    text = data[:65536].decode(encoding, "replace")
    hangul = sum(1 for c in text if "\uac00" <= c <= "\ud7a3")
    gaps = len(re.findall("[\uac00-\ud7a3] (?=[\uac00-\ud7a3])", text))
    return hangul > 0 and gaps >= 0.1 * hangul


def _halfwidth_kana(data: bytes, encoding: str) -> bool:
    """Over a tenth of the non-ASCII characters decode as half-width katakana."""
    text = data[:65536].decode(encoding, "replace")
    wide = sum(1 for c in text if ord(c) > 127)
    kana = sum(1 for c in text if "\uff61" <= c <= "\uff9f")
    return kana > 0.1 * wide


def _cyrillic(data: bytes, encoding: str) -> bool:
    """Nine in ten decoded non-ASCII characters are Cyrillic letters: Russian text."""
    text = data[:65536].decode(encoding, "replace")
    wide = [c for c in text if ord(c) > 127]
    return sum(1 for c in wide if "\u0400" <= c <= "\u04ff") >= 0.9 * len(wide)


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
        return True
    except UnicodeDecodeError:
        return False


def _damaged_legacy(data: bytes) -> list:
    """charset-normalizer's matches for text in a legacy codec with a few invalid bytes.

    It drops any codec that fails to decode; we drop the bad bytes per codec and ask again.
    """
    from charset_normalizer import from_bytes

    found = []
    for enc in _LEGACY:
        text = data.decode(enc, "ignore")
        if len(data) - len(text.encode(enc)) <= max(2, 0.005 * len(data)):
            found += list(from_bytes(text.encode(enc), cp_isolation=[enc]))
    return sorted(found, key=lambda m: (m.chaos, -m.coherence))


def _common_chinese(c: str) -> bool:
    """A Chinese character or CJK punctuation in GB2312, the set everyday Chinese text uses."""
    if not ("\u4e00" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f" or "\uff00" <= c <= "\uffef"):
        return False
    try:
        c.encode("gb2312")
        return True
    except UnicodeEncodeError:
        return False


def _chinese(data: bytes) -> str | None:
    """'gbk' or 'gb18030' when the bytes decode strictly as GB18030 into Chinese, else None.

    Chinese means: at least 16 non-ASCII characters, nine in ten of them common Chinese
    characters or CJK punctuation (GB2312), the rest letters or symbols (pinyin é, or accented
    Latin and emoji through GB18030's four-byte sequences), and no spaces between words.
    charset-normalizer alone read such text with a few "é" as EUC-KR, and refused it with emoji.
    Big5, Shift-JIS and EUC-JP bytes read as GBK give characters outside GB2312 or kana; EUC-KR
    and Cyrillic bytes give GB2312 characters, but with Korean or Russian word spacing.
    """
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        return None
    sample = text[:32768]
    wide = [c for c in sample if ord(c) > 127]
    if len(wide) < 16:
        return None
    han = sum(1 for c in wide if _common_chinese(c))
    if han < 0.9 * len(wide):
        return None
    rest = (c for c in wide if not _common_chinese(c))
    if any(unicodedata.category(c)[0] not in "LMNPS" or "\u3040" <= c <= "\u30ff" for c in rest):
        return None  # controls, private use, unassigned code points, or kana
    gaps = len(re.findall("[\u4e00-\u9fff] (?=[\u4e00-\u9fff])", sample))
    if gaps >= 0.05 * han:
        return None  # words between spaces: Korean (EUC-KR) or Cyrillic bytes read as GBK
    return "gbk" if _decodes(data, "gbk") else "gb18030"


def _detect_legacy(data: bytes, name: str) -> str:
    """The most plausible legacy encoding of `data` (known not to be UTF-8)."""
    from charset_normalizer import from_bytes

    chinese = _chinese(data)
    if chinese is not None:
        return chinese
    matches = list(from_bytes(data, cp_isolation=list(_LEGACY)))
    if not matches:  # no legacy codec fits: UTF-16 CJK without a BOM, or a damaged file?
        wide = _cjk_utf16(data)
        if wide is not None:
            return wide
        matches = _damaged_legacy(data)
    if not matches:
        raise NotTextError(
            f"{name}: could not recognise the text encoding, and the bytes do not look like "
            "text; if it is text, save it as UTF-8 and upload it again"
        )
    best = matches[0]
    names = [m.encoding for m in matches]
    enc = best.encoding
    if best.coherence < 0.2 and enc not in ("cp1252", "latin_1"):  # a short, unsure guess
        if _western(data[:65536]) and _decodes(data, "cp1252"):
            enc = "cp1252"
        elif enc in ("euc_kr", "cp949") and "gb18030" in names and not _korean(data, enc):
            enc = "gb18030"  # GBK bytes read as EUC-KR give Hangul with no spaces between words
        elif enc in ("shift_jis", "cp932") and "big5" in names and _halfwidth_kana(data, enc):
            enc = "big5"  # Big5 bytes read as Shift-JIS give half-width katakana, rare in Japanese
        elif enc in ("cp1251", "koi8_r") and not _cyrillic(data, enc):
            # CJK bytes read as Cyrillic give punctuation soup ("‚НЋџ‚М•¶"), not words
            enc = next((n for n in names if n not in ("cp1251", "koi8_r")), enc)
    if enc == "gb18030":  # report GBK when it suffices; GB18030 is its superset
        try:
            data.decode("gbk")
            return "gbk"
        except UnicodeDecodeError:
            return "gb18030"
    if enc == "latin_1":  # "Latin-1" files are almost always Windows-1252
        try:
            data.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:
            return "latin-1"
    if enc == "cp932":  # plain Shift-JIS when it suffices
        try:
            data.decode("shift_jis")
            return "shift_jis"
        except UnicodeDecodeError:
            return "cp932"
    return _REPORT.get(enc, enc)


def _damaged_utf8(data: bytes, exc: UnicodeDecodeError, repairs: list[str]) -> str | None:
    """UTF-8 with a cut-off last character or a few bad bytes, or None if it is not UTF-8.

    Legacy text decodes as UTF-8 almost nowhere; real UTF-8 with damage decodes almost
    everywhere, so the share of valid multi-byte characters tells them apart.
    """
    if exc.end == len(data) and exc.reason == "unexpected end of data":
        try:
            text = data[:exc.start].decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and not text.isascii():  # UTF-8 evidence before the cut
            repairs.append("the file ends in the middle of a character (it was cut off); "
                           "the incomplete last character was dropped")
            return text
    def counts(chunk: bytes) -> tuple[str, int, int]:
        text = chunk.decode("utf-8", "replace")
        bad = text.count("\ufffd") - chunk.decode("utf-8", "ignore").count("\ufffd")
        wide = len(text) - len(text.encode("ascii", "ignore"))
        return text, bad, wide - bad

    def plausible(bad: int, good: int) -> bool:
        return good >= 5 and bad <= max(1, 0.02 * good)

    if len(data) > 65536 and not plausible(*counts(data[:65536])[1:]):
        return None  # legacy text shows itself in the first 64 KiB: skip the full decode
    text, bad, good = counts(data)
    if plausible(bad, good):
        noun = "sequence" if bad == 1 else "sequences"
        repairs.append(f"{bad:,} invalid UTF-8 byte {noun} (damaged bytes) marked \ufffd")
        return text
    return None


def decode_bytes(data: bytes, name: str, repairs: list[str]) -> tuple[str, str]:
    """(text, encoding) for uploaded bytes: BOM, evident UTF-16/32, UTF-8, then legacy codecs."""
    for bom, enc, label in _BOMS:
        if data.startswith(bom):
            body = data[len(bom):]
            if label == "UTF-32" and len(body) % 4:
                continue  # a UTF-16-LE BOM followed by U+0000, not UTF-32
            repairs.append(f"removed the {label} byte-order mark")
            return _decode_strict_or_replace(body, enc, repairs), enc
    _sniff_binary(data, name)
    wide = _utf16_32_without_bom(data)
    if wide is not None:
        return wide
    nul = data.count(0)
    if nul:
        raise NotTextError(
            f"{name}: this looks like binary data, not text ({nul:,} NUL byte"
            f"{'' if nul == 1 else 's'}); "
            "upload a plain-text file (.txt)"
        )
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        damaged = _damaged_utf8(data, exc, repairs)
        if damaged is not None:
            return damaged, "utf-8"
    enc = _detect_legacy(data, name)
    if enc in ("utf-16-le", "utf-16-be"):
        return data.decode(enc), enc
    return _decode_strict_or_replace(data, enc, repairs), enc
