"""Cut a long text into overlapping chunks measured in characters or tokens, with exact offsets.

The cutting is LangChain's `RecursiveCharacterTextSplitter` (paragraphs, lines, then sentence
punctuation of Chinese and English, then commas, spaces, characters), with the length measured
by an lmcore tokenizer through `length_function` when the size is in tokens. The splitter's own
`add_start_index` searches for the chunk from `previous_start + len(previous) - overlap`, which
is only right when lengths are characters; here each start is found by searching forward from
the previous chunk (only whitespace may lie between chunks, an overlap is at most the asked
size; repetitive text is resolved by backtracking), so `text[c.start:c.end] == c.text` always
holds.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from langchain_text_splitters import RecursiveCharacterTextSplitter

# Regular expressions tried in order: paragraphs, lines, sentence ends (Chinese full-width
# 。！？；… and English .!?; before a space), clause marks (，、,:：), spaces, characters. Each
# separator stays at the END of the piece it closes ("。" belongs to its sentence), which is
# what keep_separator="end" does; all sentence marks are one level so that short sentences of
# either language merge into one chunk.
SEPARATORS: tuple[str, ...] = (
    r"\n\s*\n",
    r"\n",
    r"[。！？；…]+[”’」』）]*|[.!?;]+[\"')\]]*(?=\s)",
    r"[，、：]|[,:](?=\s)",
    r"\s+",
    "",
)

_NONSPACE = re.compile(r"\S")
_NONSPACE_END = re.compile(r"\S\s*\Z")

Unit = Literal["tokens", "chars"]


class Encoder(Protocol):
    """Anything with `encode(text) -> ids` (an lmcore `Tokenizer`)."""

    def encode(self, text: str) -> list[int]: ...


@dataclass(frozen=True)
class Chunk:
    """One piece of the text: `text == source[start:end]`; sizes in tokens and characters."""

    index: int
    start: int  # character offset in the source text
    end: int  # exclusive
    text: str
    tokens: int  # tokenizer tokens in `text` (characters when no tokenizer was given)
    overlap_with_prev: int  # characters shared with the previous chunk

    @property
    def chars(self) -> int:
        return self.end - self.start


def length_function(tokenizer: Encoder | None, unit: Unit) -> Callable[[str], int]:
    """How a piece of text is measured: characters, or tokens of `tokenizer` (memoised)."""
    if unit == "chars":
        return len
    if unit != "tokens":
        raise ValueError(f"unit must be 'tokens' or 'chars', got {unit!r}")
    if tokenizer is None:
        raise ValueError("chunk sizes in tokens need a tokenizer: train one on the Corpus page "
                         "or measure in characters")

    @functools.lru_cache(maxsize=65_536)
    def n_tokens(piece: str) -> int:
        return len(tokenizer.encode(piece))

    return n_tokens


def split_text(text: str, chunk_size: int, overlap: int = 0, *, tokenizer: Encoder | None = None,
               unit: Unit = "tokens", separators: Sequence[str] = SEPARATORS) -> list[Chunk]:
    """Chunks of at most about `chunk_size` units overlapping by at most `overlap` units."""
    if chunk_size < 1:
        raise ValueError(f"chunk size must be at least 1, got {chunk_size}")
    if overlap < 0 or overlap >= chunk_size:
        raise ValueError(f"overlap must be in [0, chunk size={chunk_size}), got {overlap}")
    measure = length_function(tokenizer, unit)
    splitter = RecursiveCharacterTextSplitter(
        separators=list(separators), keep_separator="end", is_separator_regex=True,
        chunk_size=chunk_size, chunk_overlap=overlap, length_function=measure,
        strip_whitespace=True)
    pieces = splitter.split_text(text)
    count = length_function(tokenizer, "tokens") if tokenizer is not None else len
    return locate_chunks(text, pieces, count, overlap=overlap, measure=measure)


_SKIP = -1


def locate_chunks(text: str, pieces: Sequence[str], count: Callable[[str], int] = len, *,
                  overlap: int | None = None,
                  measure: Callable[[str], int] = len) -> list[Chunk]:
    """Give each piece its offsets by searching forward from the previous piece.

    The splitter only drops whitespace, so a piece starts after the previous one's start, no
    later than the first non-space character after its end, ends after its end, and shares at
    most `overlap` units (as `measure` counts them) with it; the first such occurrence is the
    piece's place (the splitter keeps as much overlap as fits). The splitter also emits a
    repeat lying wholly inside the previous chunk when the only new text was whitespace it
    then stripped; such a piece adds no text and is dropped. Repetitive text can make the
    choice ambiguous, so the search backtracks until the chunks reach the end of the text.
    """
    last = _NONSPACE_END.search(text)
    need_end = last.start() + 1 if last else 0
    stack: list[tuple[list[int], int]] = []  # per piece: its options, how many tried
    starts: list[int] = []
    steps, max_steps = 0, 20 * len(pieces) + 100
    while True:
        if len(stack) < len(pieces):
            i = len(stack)
            ps, pe = _previous(starts, pieces)
            stack.append((_options(text, pieces[i], ps, pe, overlap, measure), 0))
            starts.append(_SKIP)
        elif _previous(starts, pieces)[1] >= need_end:
            break
        while stack:  # take the next untried option, backtracking where none is left
            opts, k = stack[-1]
            if k < len(opts):
                stack[-1] = (opts, k + 1)
                starts[-1] = opts[k]
                break
            stack.pop()
            starts.pop()
        steps += 1
        if not stack or steps > max_steps:
            raise ValueError("could not place the splitter's chunks in the text (this is a "
                             "bug: please report the text)")
    chunks: list[Chunk] = []
    prev_end = 0
    for piece, start in zip(pieces, starts, strict=True):
        if start == _SKIP:
            continue
        end = start + len(piece)
        shared = max(0, prev_end - start) if chunks else 0
        chunks.append(Chunk(index=len(chunks), start=start, end=end, text=piece,
                            tokens=count(piece), overlap_with_prev=shared))
        prev_end = end
    return chunks


def _previous(starts: list[int], pieces: Sequence[str]) -> tuple[int, int]:
    """(start, end) of the last placed piece, (-1, 0) before the first."""
    for i in range(len(starts) - 1, -1, -1):
        if starts[i] != _SKIP:
            return starts[i], starts[i] + len(pieces[i])
    return -1, 0


def _options(text: str, piece: str, prev_start: int, prev_end: int, overlap: int | None,
             measure: Callable[[str], int]) -> list[int]:
    """Where `piece` may go, most likely first: after the previous chunk, dropped, anywhere."""
    opts = []
    lo = prev_start + 1
    if prev_start >= 0 and overlap is not None:
        lo = max(lo, prev_end - _longest_suffix(text, prev_start, prev_end, overlap, measure))
    nxt = _NONSPACE.search(text, prev_end)
    hi = nxt.start() if nxt else len(text)
    p = _find_between(text, piece, lo, hi, prev_end)
    if p is not None:
        opts.append(p)
    if prev_start >= 0 and text.find(piece, prev_start, prev_end) != -1:
        opts.append(_SKIP)
    p = _find_between(text, piece, prev_start + 1, len(text), prev_end)
    if p is not None and p not in opts:
        opts.append(p)
    return opts


def _longest_suffix(text: str, start: int, end: int, limit: int,
                    measure: Callable[[str], int]) -> int:
    """Most characters k such that text[end-k:end] measures at most `limit` (binary search)."""
    lo, hi = 0, end - start
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[end - mid:end]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _find_between(text: str, piece: str, lo: int, hi: int, prev_end: int) -> int | None:
    """First start p in [lo, hi] with text[p:] starting with `piece` and ending past prev_end."""
    pos = text.find(piece, max(lo, prev_end - len(piece) + 1, 0))
    if pos == -1 or pos > hi:
        return None
    return pos


def overlap_spans(chunks: Sequence[Chunk]) -> list[tuple[int, int]]:
    """Character spans covered by two consecutive chunks (for highlighting overlaps)."""
    return [(c.start, c.start + c.overlap_with_prev) for c in chunks if c.overlap_with_prev > 0]
