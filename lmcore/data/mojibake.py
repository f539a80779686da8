"""Mojibake repair: UTF-8 that was read as Windows-1252 or Latin-1 and saved again.

Each mis-read character stands for one byte of the original UTF-8 (`é` became `Ã©`). We map
runs of such characters back to bytes and decode them as UTF-8. Bytes the wrong decoder could
not represent (0x81 0x8D 0x8F 0x90 0x9D in Windows-1252) were lost on the way: dropped, turned
into U+FFFD or '?', and the no-break space 0xA0 often became a plain space. Every character
whose bytes all survived is recovered; a character that lost a byte is marked U+FFFD. A '?'
right after a lead byte's image such as "Ã" is such a lost byte ("Ã?lvaro" was "Álvaro") only
on a line already judged mojibake; elsewhere it may be real ("IRMÃ?"). Whatever this pass does
not explain is left to ftfy's heuristics (other codecs, HTML-era quirks); what ftfy marks with
U+FFFD is counted in the report too.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

LOST = -1  # a byte the wrong decoder replaced with U+FFFD or '?'
_CP1252_ONLY = {bytes([b]).decode("cp1252"): b for b in range(0x80, 0xA0)
                if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}  # €‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ
_RUN = re.compile("[\x80-\xff\ufffd" + "".join(_CP1252_ONLY) + "]")
# a lead byte's image followed by a continuation byte's image (or a lost byte): the only
# evidence of mojibake; lines without it are left alone without scanning them
_PAIR = re.compile("[\xc2-\xf4][\x80-\xbf\ufffd" + "".join(_CP1252_ONLY) + "]|[\xc2\xc3] ")


# what a UTF-8 lead byte looks like in each single-byte codec ftfy can undo; its mojibake
# always shows one followed by another non-ASCII character, so text without that is skipped
_FTFY_CODECS = ("latin-1", "cp1252", "cp1250", "cp1251", "iso8859-2", "mac_roman", "cp437")
_LEAD_IMAGES = {bytes([b]).decode(c, "ignore") for c in _FTFY_CODECS for b in range(0xC2, 0xF5)}
_SUSPECT = re.compile("[" + re.escape("".join(sorted(_LEAD_IMAGES - {""}))) + "][^\x00-\x7f]")


def _byte(c: str) -> int | None:
    """The byte a Windows-1252/Latin-1 reader turned into `c`, LOST for U+FFFD, else None."""
    o = ord(c)
    if 0x80 <= o <= 0xFF:  # Latin-1 range (0x80-0x9F: C1 controls from a Latin-1 reader)
        return o
    if c == "\ufffd":
        return LOST
    return _CP1252_ONLY.get(c)


def _need(b: int) -> int:
    """Continuation bytes a UTF-8 lead byte needs (0: not a lead)."""
    if 0xC2 <= b <= 0xDF:
        return 1
    if 0xE0 <= b <= 0xEF:
        return 2
    if 0xF0 <= b <= 0xF4:
        return 3
    return 0


@dataclass
class _Stats:
    valid: int = 0  # multi-byte characters decoded whole
    broken: int = 0  # lead byte plus some, not all, continuation bytes (or lost ones)
    lone: int = 0  # lead byte with no continuation at all
    orphan: int = 0  # byte-image characters that are not part of any UTF-8 sequence
    lost: int = 0  # characters replaced by U+FFFD because some of their bytes were lost
    kept: int = 0  # U+FFFD found outside any sequence, left as it was
    valid_fffd: int = 0  # whole sequences that decoded to U+FFFD itself ("ï¿½")
    qmark: int = 0  # "Ã?" (a lead, then '?') left alone: lost byte or real text (see lead_q)
    qlost: int = 0  # "Ã?" taken as a lead whose continuation byte became '?': marked
    c1: bool = False  # a C1 control was read: the wrong decoder was Latin-1
    cp1252: bool = False  # a Windows-1252-only character was read


def _rest_fits(text: str, j: int, k: int, image: bool) -> bool:
    """Whether the k characters from text[j] are continuation-byte images or '?' (lost bytes),
    with at least one image if `image`: then a '?' before them completes a sequence."""
    seen = False
    for c in text[j:j + k]:
        b = _byte(c)
        if b is not None and 0x80 <= b <= 0xBF:
            seen = True
        elif c != "?":
            return False
    return (seen or not image) and len(text) >= j + k


def _scan(text: str, mark_lone: bool, stats: _Stats, lead_q: bool = False) -> str:
    """One left-to-right pass decoding byte-image runs; returns the repaired text.

    `lead_q`: a '?' right after the image of a lead byte ("Ã?" for Á, "Ð?" for А) is its lost
    continuation byte (set only for lines already judged mojibake).
    """
    out: list[str] = []
    pos, n = 0, len(text)
    while True:
        m = _RUN.search(text, pos)
        if m is None:
            out.append(text[pos:])
            return "".join(out)
        i = m.start()
        out.append(text[pos:i])
        while i < n:
            b = _byte(text[i])
            if b is None:
                break
            need = _need(b)
            if need == 0:
                out.append(text[i])  # orphan byte-image char or a lone U+FFFD: keep as it is
                if b == LOST:
                    stats.kept += 1
                else:
                    stats.orphan += 1
                i += 1
                continue
            seq, lost, qlead, j = [b], False, False, i + 1
            while j < n and len(seq) <= need:
                c = text[j]
                nb = _byte(c)
                if c == "?" and len(seq) == 1:  # right after the lead
                    if need > 1 and _rest_fits(text, j + 1, need - 1, image=True):
                        nb = LOST  # "â?¤" for ❤: continuation bytes follow, not a sentence
                    elif lead_q and _rest_fits(text, j + 1, need - 1, image=False):
                        nb, qlead = LOST, True  # "Ã?" for Á, "á??" for ᐍ on a mojibake line
                    else:  # "IRMÃ?" may be real: decided per line (lead_q)
                        break
                elif c == "?" and len(seq) > 1:
                    nb = LOST  # '?' for a byte the decoder could not map ("ä¸?" for 丁)
                elif c == " " and len(seq) == 1 and b in (0xC2, 0xC3):
                    nb = 0xA0  # "Ã " for "à", "Â " for a no-break space: 0xA0 became a space
                if nb is None or not (nb == LOST or 0x80 <= nb <= 0xBF):
                    break
                lost = lost or nb == LOST
                seq.append(nb)
                j += 1
            got = len(seq) - 1
            char = None
            if got == need and not lost:
                try:
                    char = bytes(seq).decode("utf-8")
                except UnicodeDecodeError:
                    char = None
            if char is not None:
                stats.valid += 1
                stats.valid_fffd += char == "\ufffd"
                stats.c1 |= any(0x80 <= ord(c) <= 0x9F for c in text[i:j])
                stats.cp1252 |= any(c in _CP1252_ONLY for c in text[i:j])
                out.append(char)
                i = j
            elif got == 0 and j < n and text[j] == "?":
                stats.qmark += 1  # neither evidence nor counter-evidence of mojibake
                out.append(text[i])
                i += 1
            elif got == 0:
                stats.lone += 1
                stats.lost += mark_lone
                out.append("\ufffd" if mark_lone else text[i])
                i += 1
            elif got < need or lost:
                stats.broken += 1
                stats.lost += 1
                stats.qlost += qlead
                out.append("\ufffd")
                i = j
            else:  # complete but invalid UTF-8 (overlong, surrogate): not mojibake
                stats.orphan += 1
                out.append(text[i])
                i += 1
        pos = i


def _looks_mojibake(s: _Stats) -> bool:
    """Whole or broken UTF-8 sequences outnumber unexplained characters 3 to 1: mis-decoded."""
    evidence = s.valid + s.broken
    return evidence > 0 and evidence >= 3 * (s.orphan + s.lone)


def _codec_name(s: _Stats) -> str:
    if s.cp1252 and s.c1:
        return "Windows-1252, with Latin-1 for undefined bytes"
    if s.c1:
        return "Latin-1"
    return "Windows-1252" if s.cp1252 else "Windows-1252 or Latin-1"


def _lines(text: str) -> list[str]:
    """Lines with their "\\n" kept; only "\\n" splits, as U+0085 is a mis-read byte here."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _to_bytes(err: UnicodeEncodeError) -> tuple[bytes, int]:
    """Encode error handler: C1 controls are their Latin-1 byte, anything else its UTF-8."""
    chunk = err.object[err.start:err.end]
    out = b"".join(bytes([ord(c)]) if "\x80" <= c <= "\x9f" else c.encode("utf-8")
                   for c in chunk)
    return out, err.end


codecs.register_error("lmcore.mojibake", _to_bytes)
_C1 = re.compile("[\x80-\x9f]")
_CP1252_CHARS = re.compile("[" + "".join(_CP1252_ONLY) + "]")
_NOT_IMAGE = re.compile("[^\x00-\xff" + "".join(_CP1252_ONLY) + "]")


def _fast(line: str) -> tuple[str, _Stats] | None:
    """The whole line back to bytes and decoded as UTF-8 in C, when nothing was lost in it
    (no U+FFFD, and every byte image is part of a whole sequence); else None."""
    if "\ufffd" in line:
        return None
    try:
        out = line.encode("cp1252", "lmcore.mojibake").decode("utf-8")
    except UnicodeDecodeError:
        return None
    stats = _Stats()
    n_wide = len(out) - len(out.encode("ascii", "ignore"))
    stats.valid = n_wide - len(_NOT_IMAGE.findall(line))
    stats.valid_fffd = out.count("\ufffd")
    stats.c1 = _C1.search(line) is not None
    stats.cp1252 = _CP1252_CHARS.search(line) is not None
    return out, stats


def _decode_line(line: str, mark_lone: bool, lead_q: bool = False) -> tuple[str, _Stats]:
    """One line decoded from its byte images: the C fast path, else the careful scan."""
    fast = _fast(line)
    if fast is not None:
        return fast
    stats = _Stats()
    return _scan(line, mark_lone=mark_lone, stats=stats, lead_q=lead_q), stats


def _repair_lines(text: str) -> tuple[str, _Stats]:
    """Repair the lines that look mis-decoded, judged alone or, when they hold some UTF-8
    sequence and no stray Latin-1 character, as part of a document that looks mis-decoded."""
    lines = _lines(text)
    probes: list[tuple[str, _Stats] | None] = []
    doc = _Stats()
    for line in lines:
        probe = None
        if line.isascii():
            pass
        elif _PAIR.search(line) is None:
            doc.orphan += len(_RUN.findall(line))  # stray characters, not sequences
        else:
            probe = _decode_line(line, mark_lone=False)
            for k in ("valid", "broken", "lone", "orphan"):
                setattr(doc, k, getattr(doc, k) + getattr(probe[1], k))
        probes.append(probe)
    doc_bad = _looks_mojibake(doc)
    total = _Stats()
    out = []
    for line, probe in zip(lines, probes, strict=True):
        if probe is None:
            out.append(line)
            continue
        fixed, stats = probe
        alone = _looks_mojibake(stats)
        with_doc = doc_bad and stats.orphan == 0 and stats.valid + stats.broken > 0
        if not (alone or with_doc):
            out.append(line)
            continue
        if stats.qmark or (stats.lone and stats.orphan == 0):
            # in a mis-decoded line "Ã?" lost its second byte; lone leads are marked unless
            # stray Latin-1 characters say the line also holds real Latin-1 text
            fixed, stats = _decode_line(line, mark_lone=stats.orphan == 0, lead_q=True)
        out.append(fixed)
        for k in ("valid", "broken", "lone", "orphan", "lost", "kept", "valid_fffd", "qmark",
                  "qlost"):
            setattr(total, k, getattr(total, k) + getattr(stats, k))
        total.c1 |= stats.c1
        total.cp1252 |= stats.cp1252
    return "".join(out), total


def _ftfy_pass(before: str, after: str) -> tuple[str, int, int]:
    """Let ftfy fix the lines it judges bad that our pass left alone.

    Returns (text, lines fixed, characters ftfy marked U+FFFD because their bytes were lost).
    ftfy is imported only when a text looks suspect (a fast start for tools that never need it).
    """
    if _SUSPECT.search(after) is None:
        return after, 0, 0
    import ftfy
    from ftfy.badness import is_bad

    if not is_bad(after):  # cheap test first, then ftfy's
        return after, 0, 0
    out, fixed, marked = [], 0, 0
    for old, line in zip(_lines(before), _lines(after), strict=True):
        if old == line and not line.isascii() and is_bad(line):
            new = ftfy.fix_encoding(line)
            if new != line:
                fixed += 1
                marked += max(0, new.count("\ufffd") - line.count("\ufffd"))
                line = new
        out.append(line)
    return "".join(out), fixed, marked


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _are(n: int) -> str:
    return "is" if n == 1 else "are"


def repair_mojibake(text: str, repairs: list[str]) -> str:
    """Undo UTF-8-read-as-Windows-1252/Latin-1 (up to 3 layers); note what was done in `repairs`."""
    if text.isascii():
        return text
    layers: list[_Stats] = []
    original = text
    for _ in range(3):
        new, stats = _repair_lines(text)
        if new == text:
            break
        layers.append(stats)
        text = new
    if layers:
        valid = layers[-1].valid
        codec = _codec_name(layers[0])
        times = "" if len(layers) == 1 else f", {len(layers)} times over"
        where = f" in {_count(valid, 'place')}" if valid else ""  # 0: only lost bytes marked
        repairs.append(f"fixed mojibake (UTF-8 read as {codec}{times}){where}")
        # markers an outer layer wrote and an inner one kept count once, legit U+FFFD never
        carried = layers[-1].kept - layers[0].kept - sum(s.valid_fffd for s in layers[:-1])
        lost = layers[-1].lost + max(0, carried)
        if lost:
            qlost = sum(s.qlost for s in layers)
            why = (f"; {qlost:,} of them showed as a letter and \"?\" for a second byte the "
                   "Windows-1252 reader could not map (\"Ã?\" was one of Á Í Ï Ð Ý)"
                   ) if qlost else ""
            repairs.append(f"{_count(lost, 'character')} could not be recovered (bytes lost "
                           f"when the text was mis-decoded) and {_are(lost)} marked \ufffd{why}")
    text, n_ftfy, marked = _ftfy_pass(original, text)
    if n_ftfy:
        lost_note = (f"; {_count(marked, 'character')} could not be recovered (bytes lost) "
                     f"and {_are(marked)} marked \ufffd") if marked else ""
        repairs.append(f"fixed other encoding damage on {_count(n_ftfy, 'line')} (ftfy)"
                       f"{lost_note}")
    return text
