"""HTML for text with spans marked: token boundaries, per-token surprisal, chunk overlaps."""

from __future__ import annotations

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
