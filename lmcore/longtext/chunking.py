"""Cut a long text into overlapping chunks measured in characters or tokens, with exact offsets.

The cutting is LangChain's `RecursiveCharacterTextSplitter` (paragraphs, lines, then sentence
punctuation of Chinese and English, then commas, spaces, characters), with the length measured
by an lmcore tokenizer through `length_function` when the size is in tokens. The splitter's own
`add_start_index` searches for the chunk from `previous_start + len(previous) - overlap`, which
is only right when lengths are characters; here each start is found by searching forward from
the previous start, so `text[c.start:c.end] == c.text` always holds.
"""

from __future__ import annotations

import functools
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
        separators=list(separators), keep_separator="end", is_separator_regex=True, chunk_size=chunk_size,
        chunk_overlap=overlap, length_function=measure, strip_whitespace=True)
    pieces = splitter.split_text(text)
    count = length_function(tokenizer, "tokens") if tokenizer is not None else len
    return locate_chunks(text, pieces, count)


def locate_chunks(text: str, pieces: Sequence[str],
                  count: Callable[[str], int] = len) -> list[Chunk]:
    """Give each piece its offsets by searching forward from the previous piece's start."""
    chunks: list[Chunk] = []
    prev_start, prev_end = -1, 0
    for piece in pieces:
        start = _find_after(text, piece, prev_start, prev_end)
        end = start + len(piece)
        overlap = max(0, prev_end - start) if chunks else 0
        chunks.append(Chunk(index=len(chunks), start=start, end=end, text=piece,
                            tokens=count(piece), overlap_with_prev=overlap))
        prev_start, prev_end = start, end
    return chunks


def _find_after(text: str, piece: str, prev_start: int, prev_end: int) -> int:
    """First occurrence of `piece` starting after `prev_start` that reaches past `prev_end`.

    Every new chunk adds text the previous one did not have, so the true start is the first
    occurrence that both starts later and ends later; with repeated passages that is still a
    placement where the chunk text equals the source text, which is what the offsets promise.
    """
    pos = text.find(piece, prev_start + 1)
    first = pos
    while pos != -1 and pos + len(piece) <= prev_end:
        pos = text.find(piece, pos + 1)
    if pos == -1:
        pos = first
    if pos == -1:  # the splitter only returns substrings; this would be a bug there
        raise ValueError(f"chunk not found in the text after offset {prev_start}: "
                         f"{piece[:40]!r}")
    return pos


def overlap_spans(chunks: Sequence[Chunk]) -> list[tuple[int, int]]:
    """Character spans covered by two consecutive chunks (for highlighting overlaps)."""
    return [(c.start, c.start + c.overlap_with_prev) for c in chunks if c.overlap_with_prev > 0]
