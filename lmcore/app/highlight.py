"""HTML for text with spans marked: token boundaries, per-token surprisal, chunk overlaps."""

from __future__ import annotations

import bisect
import html
from collections.abc import Sequence

_PALETTE = ("#dbeafe", "#fde68a", "#bbf7d0", "#fbcfe8", "#e9d5ff", "#fed7aa")


def _show(piece: str) -> str:
    return html.escape(piece).replace("\n", "⏎<br>")


def token_groups(offsets: Sequence[tuple[int, int]]) -> list[tuple[int, int, int, int]]:
    """Character spans of whole tokens: (start, end, first token, last token), in order.

    Tokens whose character spans overlap (the byte pieces of one multi-byte character, which
    all report that character's span) merge into one group, so each character is shown once.
    """
    groups: list[list[int]] = []
    for i, (start, end) in enumerate(offsets):
        if end <= start:
            continue
        if groups and start < groups[-1][1]:  # shares characters with the previous group
            groups[-1][1] = max(groups[-1][1], end)
            groups[-1][3] = i
        else:
            groups.append([start, end, i, i])
    return [(a, b, i, j) for a, b, i, j in groups]


def token_boundaries_html(text: str, offsets: Sequence[tuple[int, int]]) -> str:
    """Each token's characters on an alternating background; hover shows the token's index.

    Byte pieces of one character share a span (see `token_groups`); hover names them all.
    """
    out, pos = [], 0
    for n, (start, end, first, last) in enumerate(token_groups(offsets)):
        if start > pos:  # characters no token covers (e.g. dropped whitespace)
            out.append(_show(text[pos:start]))
        colour = _PALETTE[n % len(_PALETTE)]
        tip = f"token {first}" if first == last else f"tokens {first}–{last}"
        out.append(f'<span title="{tip}" style="background:{colour};border-radius:3px;'
                   f'padding:0 1px">{_show(text[start:end])}</span>')
        pos = end
    out.append(_show(text[pos:]))
    return _wrap("".join(out))


def heat_html(text: str, offsets: Sequence[tuple[int, int]], values: Sequence[float],
              labels: Sequence[str] | None = None, vmax: float | None = None) -> str:
    """Spans glowing in proportion to `values` (e.g. bits of surprisal); hover shows labels."""
    top = vmax if vmax is not None else (max(values) if len(values) else 1.0)
    top = top if top > 0 else 1.0
    out, pos = [], 0
    for i, ((start, end), v) in enumerate(zip(offsets, values, strict=True)):
        if start > pos:
            out.append(_show(text[pos:start]))
        if end <= start:
            continue
        alpha = min(max(v / top, 0.0), 1.0)
        tip = html.escape(labels[i]) if labels else f"{v:.2f}"
        out.append(f'<span title="{tip}" style="background:rgba(239,68,68,{alpha:.3f});'
                   f'border-radius:3px">{_show(text[start:end])}</span>')
        pos = max(pos, end)
    out.append(_show(text[pos:]))
    return _wrap("".join(out))


def _wrap(body: str) -> str:
    return ('<div style="font-family:ui-monospace,monospace;line-height:1.9;'
            f'white-space:pre-wrap;word-break:break-all">{body}</div>')


def repairs_html(text: str, marks: Sequence, max_lines: int = 200, head: int = 3000) -> str:
    """The lines of `text` that hold a repair or a lost character, numbered, with repaired
    spans in green (hover: what stood there before) and lost characters in red.

    Without marks: the first `head` characters. At most `max_lines` lines are drawn.
    """
    if not marks:
        more = len(text) > head
        return _wrap(_show(text[:head]) + ("<br>…" if more else ""))
    line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    by_line: dict[int, list] = {}
    for m in marks:
        by_line.setdefault(bisect.bisect_right(line_starts, m.start) - 1, []).append(m)
    rows = []
    for n in sorted(by_line)[:max_lines]:
        start = line_starts[n]
        end = line_starts[n + 1] - 1 if n + 1 < len(line_starts) else len(text)
        out, pos = [], start
        for m in sorted(by_line[n], key=lambda m: m.start):
            if m.start < pos:
                continue
            out.append(_show(text[pos:m.start]))
            piece = _show(text[m.start:min(m.end, end)] or " ")
            if m.kind == "lost":
                out.append('<span title="a character whose bytes were lost" '
                           f'style="background:#fecaca;outline:1px solid #dc2626">{piece}</span>')
            else:
                tip = html.escape(f"was: {m.before!r}")
                out.append(f'<span title="{tip}" style="background:#bbf7d0;'
                           f'border-bottom:2px solid #16a34a">{piece}</span>')
            pos = max(pos, min(m.end, end))
        out.append(_show(text[pos:end]))
        rows.append(f'<span style="color:#9ca3af">{n + 1:>6} │ </span>{"".join(out)}')
    hidden = len(by_line) - len(rows)
    tail = f"<br>… {hidden:,} more lines with repairs not shown" if hidden > 0 else ""
    return _wrap("<br>".join(rows) + tail)
