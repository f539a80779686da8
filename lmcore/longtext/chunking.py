"""Cut a long text into overlapping chunks measured in characters or tokens, with exact offsets.

The cutting is LangChain's `RecursiveCharacterTextSplitter` (paragraphs, lines, then sentence
punctuation of Chinese and English, then commas, spaces, characters), with the length measured
by an lmcore tokenizer through `length_function` when the size is in tokens. The splitter's own
`add_start_index` searches for the chunk from `previous_start + len(previous) - overlap`, which
is only right when lengths are characters. Here the splitter keeps whitespace, so its pieces
tile the text exactly (each starts inside or at the end of the previous one and reaches past
it); `place_pieces` finds those places, and only then is whitespace stripped, so
`text[c.start:c.end] == c.text` always holds. Stripping the whitespace first loses that: a
piece that began with a run of spaces and the next piece can then start at the same offset.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Sequence
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
    # strip_whitespace=False: the pieces then tile the text exactly (each one a run of whole
    # splits), which is what lets `locate_chunks` place them; whitespace is stripped after.
    # The splitter decides its cuts from the unstripped splits either way.
    splitter = RecursiveCharacterTextSplitter(
        separators=list(separators), keep_separator="end", is_separator_regex=True,
        chunk_size=chunk_size, chunk_overlap=overlap, length_function=measure,
        strip_whitespace=False)
    pieces = splitter.split_text(text)
    count = length_function(tokenizer, "tokens") if tokenizer is not None else len
    return locate_chunks(text, pieces, count, overlap=overlap, measure=measure)


def locate_chunks(text: str, pieces: Sequence[str], count: Callable[[str], int] = len, *,
                  overlap: int | None = None,
                  measure: Callable[[str], int] = len) -> list[Chunk]:
    """Place the splitter's unstripped pieces in `text`, then strip them into chunks.

    The pieces tile the text (see `place_pieces`). Each is then stripped of surrounding
    whitespace; a stripped chunk lying wholly inside its neighbour adds nothing and is dropped
    (a piece whose only new text was whitespace, or one that began with whitespace and starts
    where the next one does). When `overlap` is given, a chunk whose shared text with the
    previous one measures more than `overlap` (token counts of a join can exceed the sum the
    splitter added up) starts later, until it does not.
    """
    spans = []  # (start, end) of each stripped chunk
    places = place_pieces(text, pieces, overlap=overlap, measure=measure)
    for start, piece in zip(places, pieces, strict=True):
        lead = len(piece) - len(piece.lstrip())
        end = start + len(piece.rstrip())
        start += lead
        if end <= start:
            continue  # whitespace only
        if spans and end <= spans[-1][1]:
            continue  # inside the previous chunk (stripped starts never go back)
        while spans and start <= spans[-1][0]:
            spans.pop()  # the previous chunk lies inside this one
        if spans and overlap is not None:
            start = _fit_overlap(text, start, spans[-1][1], overlap, measure)
        spans.append((start, end))
    chunks: list[Chunk] = []
    for i, (start, end) in enumerate(spans):
        shared = max(0, spans[i - 1][1] - start) if i else 0
        piece = text[start:end]
        chunks.append(Chunk(index=i, start=start, end=end, text=piece, tokens=count(piece),
                            overlap_with_prev=shared))
    return chunks


def place_pieces(text: str, pieces: Sequence[str], *, overlap: int | None = None,
                 measure: Callable[[str], int] = len) -> list[int]:
    """Start of each piece, where the pieces tile `text` as the splitter emits them unstripped.

    The first piece starts at 0 and the last ends at len(text); each later piece starts inside
    the previous one or right at its end (it carries whole splits over as the overlap) and
    reaches past it (it adds at least one split). In text without repeats one place fits; in
    repetitive text several do, so a depth-first search tries first the places sharing the
    most text that still measures at most `overlap` (what the splitter keeps), and remembers
    dead ends (whether a place leads to the end of the text depends on the place alone).
    """
    if not pieces:
        return []
    if not text.startswith(pieces[0]):
        raise ValueError("the pieces do not tile the text: the first is not its beginning")
    n = len(pieces)
    stack: list[tuple[int, Iterator[int] | None]] = [(0, None)]  # (start, places of the next)
    dead: set[tuple[int, int]] = set()
    while stack:
        i = len(stack) - 1
        start, places = stack[-1]
        if i == n - 1:
            if start + len(pieces[i]) == len(text):
                return [s for s, _ in stack]
            dead.add((i, start))
            stack.pop()
            continue
        if places is None:
            places = _places(text, pieces[i + 1], start, start + len(pieces[i]), overlap,
                             measure)
            stack[-1] = (start, places)
        p = next((p for p in places if (i + 1, p) not in dead), None)
        if p is None:
            dead.add((i, start))
            stack.pop()
        else:
            stack.append((p, None))
    raise ValueError("the pieces do not tile the text: each must start inside the previous "
                     "one (or at its end), reach past it, and the last must end the text")


def _places(text: str, piece: str, prev_start: int, prev_end: int, overlap: int | None,
            measure: Callable[[str], int]) -> Iterator[int]:
    """Starts p in (prev_start, prev_end] where `piece` occurs and reaches past prev_end.

    First those whose shared text measures at most `overlap`, most shared first; then the
    others, nearest to fitting first.
    """
    lo = max(prev_start + 1, prev_end - len(piece) + 1, 0)
    fit = lo
    if overlap is not None and prev_end > lo:
        fit = max(lo, prev_end - _longest_suffix(text, prev_start, prev_end, overlap, measure))
    hi = prev_end + len(piece)  # the piece must end by here (it starts at most at prev_end)
    p = text.find(piece, fit, hi)
    while p != -1:
        yield p
        p = text.find(piece, p + 1, hi)
    p = text.rfind(piece, lo, fit - 1 + len(piece))  # starts in [lo, fit)
    while p != -1:
        yield p
        p = text.rfind(piece, lo, p - 1 + len(piece))


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


def _fit_overlap(text: str, start: int, prev_end: int, limit: int,
                 measure: Callable[[str], int]) -> int:
    """`start`, moved right (past whitespace) until text[start:prev_end] measures ≤ limit."""
    while start < prev_end and measure(text[start:prev_end]) > limit:
        nxt = _skip_space(text, prev_end - _longest_suffix(text, start, prev_end, limit,
                                                           measure))
        start = nxt if nxt > start else _skip_space(text, start + 1)
    return start


def _skip_space(text: str, i: int) -> int:
    """The first non-space position at or after i (len(text) if none)."""
    m = _NONSPACE.search(text, i)
    return m.start() if m else len(text)


def overlap_spans(chunks: Sequence[Chunk]) -> list[tuple[int, int]]:
    """Character spans covered by two consecutive chunks (for highlighting overlaps)."""
    return [(c.start, c.start + c.overlap_with_prev) for c in chunks if c.overlap_with_prev > 0]
