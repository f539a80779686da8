"""Mojibake repair: UTF-8 that was read as Windows-1252 or Latin-1 and saved again."""

from __future__ import annotations

import ftfy


def repair_mojibake(text: str, repairs: list[str]) -> str:
    """Undo UTF-8-read-as-Windows-1252/Latin-1 line by line; note what was fixed in `repairs`."""
    if text.isascii():
        return text
    config = ftfy.TextFixerConfig(unescape_html=False, fix_latin_ligatures=False,
                                  fix_character_width=False, uncurl_quotes=False,
                                  fix_line_breaks=False, normalization=None)
    out, n_fixed = [], 0
    for line in text.splitlines(keepends=True):
        if not line.isascii():
            fixed = ftfy.fix_encoding(line, config)
            if fixed != line:
                n_fixed += 1
                line = fixed
        out.append(line)
    if n_fixed:
        repairs.append(f"fixed mojibake (UTF-8 read as Windows-1252) on {n_fixed:,} lines")
    return "".join(out)
