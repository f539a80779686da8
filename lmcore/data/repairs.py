"""Where the loaded text differs from the bytes as first decoded: repaired spans, lost chars.

`load_text` lists its repairs in words; this finds them in the text, so a person can read each
one in place and judge it. A span is 'repaired' where the final text differs from the decoded
text (mojibake undone, Unicode normalised), 'lost' where a character is U+FFFD: bytes the file
no longer holds (damaged, or dropped by a wrong decoder before it was saved).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

LOST_CHAR = "\ufffd"


@dataclass(frozen=True)
class Mark:
    """Characters [start, end) of the final text, and what stood there before (if repaired)."""

    start: int
    end: int
    kind: str  # 'repaired' | 'lost'
    before: str = ""


def plain(decoded: str) -> str:
    """The decoded text with the changes every text gets (BOM, line endings) already made,
    so that only the repairs worth reading remain as differences."""
    return decoded.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def repair_marks(text: str, decoded: str | None = None) -> list[Mark]:
    """Repaired spans (where `text` differs from `decoded`) and lost characters, in order.

    Compared line by line, then character by character inside changed lines: linear in the
    text for the usual few repairs, never a quadratic diff of a whole book.
    """
    marks: list[Mark] = []
    if decoded is not None and plain(decoded) != text:
        old_lines = plain(decoded).split("\n")
        new_lines = text.split("\n")
        starts = [0]
        for line in new_lines:
            starts.append(starts[-1] + len(line) + 1)
        sm = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
        for op, i1, i2, j1, j2 in sm.get_opcodes():
            if op == "equal" or j1 == j2:
                continue
            old = "\n".join(old_lines[i1:i2])
            new_start = starts[j1]
            new = "\n".join(new_lines[j1:j2])
            inner = difflib.SequenceMatcher(None, old, new, autojunk=False)
            for op2, a1, a2, b1, b2 in inner.get_opcodes():
                if op2 != "equal" and b2 > b1:
                    marks.append(Mark(new_start + b1, new_start + b2, "repaired", old[a1:a2]))
    lost = [Mark(i, i + 1, "lost") for i, c in enumerate(text) if c == LOST_CHAR] \
        if LOST_CHAR in text else []
    # a lost character inside a repaired span is reported as lost (the more useful fact)
    out = [m for m in marks if not any(m.start <= x.start < m.end for x in lost)] + lost
    return sorted(out, key=lambda m: (m.start, m.end))
