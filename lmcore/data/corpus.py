"""A corpus: one text with its provenance, loaded from any bytes a person might upload.

`load_text` finds the encoding (`encoding.py`: BOMs, UTF-8, UTF-16/32, GB18030/GBK, Big5,
Shift-JIS, Latin-1/Windows-1252), repairs mojibake (`mojibake.py`), normalises newlines and
Unicode (NFC), and rejects binary, compressed, empty or over-limit input with a `CorpusError` a
person can act on. Every change made to the text is listed in `Corpus.repairs`.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import BinaryIO

from lmcore.data.encoding import NotTextError, decode_bytes
from lmcore.data.mojibake import repair_mojibake
from lmcore.data.repairs import plain
from lmcore.settings import LimitError, get_settings


class CorpusError(ValueError):
    """The input cannot be used as a corpus; the message says why and what to do."""


class CorpusLimitError(CorpusError, LimitError):
    """The input is over a configured size limit; the message names the `LMCORE_*` variable."""


SOURCES = ("builtin", "upload", "paste", "synthetic")


@dataclass(frozen=True)
class Split:
    """Train / validation / test text: first 85%, next 5%, last 10% of the characters."""

    train: str
    valid: str
    test: str

    def __iter__(self) -> Iterator[str]:
        return iter((self.train, self.valid, self.test))


@dataclass(frozen=True)
class Corpus:
    """One text plus where it came from and what was done to it; counts are derived."""

    name: str
    text: str = field(repr=False)
    source: str = "paste"  # 'builtin' | 'upload' | 'paste' | 'synthetic'
    encoding: str = "utf-8"
    repairs: tuple[str, ...] = ()
    entropy_rate: float | None = None  # bits/char, known exactly only for synthetic sources
    # the text as first decoded, before repairs; kept only when a repair changed more than
    # the BOM and line endings (see data/repairs.py: the page shows each repair in place)
    decoded: str | None = field(default=None, repr=False, compare=False)
    chars: int = field(init=False)
    lines: int = field(init=False)
    bytes_utf8: int = field(init=False)
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        data = self.text.encode("utf-8")
        n_lines = self.text.count("\n") + (1 if self.text and not self.text.endswith("\n") else 0)
        object.__setattr__(self, "chars", len(self.text))
        object.__setattr__(self, "lines", n_lines)
        object.__setattr__(self, "bytes_utf8", len(data))
        object.__setattr__(self, "fingerprint", hashlib.sha256(data).hexdigest()[:16])

    def split(self) -> Split:
        """Deterministic 85/5/10 split by characters, cut at a nearby line boundary if any."""
        return self._split

    @cached_property
    def _split(self) -> Split:
        text, n = self.text, len(self.text)
        a = _cut(text, int(0.85 * n), 1, n)
        b = _cut(text, int(0.90 * n), a + 1 if a < n else a, n)
        return Split(text[:a], text[a:b], text[b:])


def _cut(text: str, target: int, lo: int, hi: int) -> int:
    """A cut near `target` in [lo, hi): the closest line start within 2.5% of the text, if any."""
    n = len(text)
    target = min(max(target, lo), hi)
    if n == 0 or "\n" not in text:
        return target
    slack = max(1, n // 40)
    before = text.rfind("\n", max(lo - 1, 0), target) + 1  # start of the line holding target
    after = text.find("\n", target, min(hi, target + slack))
    options = [p for p in (before, after + 1 if after >= 0 else -1)
               if lo <= p < hi and abs(p - target) <= slack]
    return min(options, key=lambda p: abs(p - target)) if options else target


# --------------------------------------------------------------------------- checks


def check_chars(n_chars: int) -> None:
    """Raise CorpusLimitError when `n_chars` is over the limit (LMCORE_MAX_CHARS)."""
    s = get_settings()
    if n_chars > s.max_chars:
        raise CorpusLimitError(
            f"the text has {n_chars:,} characters, over the limit of {s.max_chars:,} "
            f"(set LMCORE_MAX_CHARS to raise it, or use a shorter text)"
        )


def _check_text_limits(text: str) -> None:
    check_chars(len(text))


def _check_not_blank(text: str, what: str) -> None:
    if not text:
        raise CorpusError(f"{what} is empty: give a text with at least one character")
    if not text.strip():
        raise CorpusError(f"{what} contains only whitespace: give a text with some words in it")


def _normalise(text: str, repairs: list[str]) -> str:
    """Strip a BOM, turn CRLF/CR into LF, NFC-normalise; note each change in `repairs`."""
    if text.startswith("\ufeff"):
        text = text[1:]
        repairs.append("removed the byte-order mark at the start")
    n_crlf = text.count("\r\n")
    if n_crlf:
        text = text.replace("\r\n", "\n")
    n_cr = text.count("\r")
    if n_cr:
        text = text.replace("\r", "\n")
    if n_crlf or n_cr:
        kinds = ", ".join(k for k, c in (("CRLF", n_crlf), ("CR", n_cr)) if c)
        n = n_crlf + n_cr
        repairs.append(f"converted {n:,} line ending{'' if n == 1 else 's'} ({kinds}) to LF")
    if not unicodedata.is_normalized("NFC", text):
        nfc = unicodedata.normalize("NFC", text)
        fewer = len(text) - len(nfc)
        how = (f"combining marks joined to their letters, {fewer:,} characters fewer" if fewer
               else "some characters replaced by their canonical equivalents")
        repairs.append(f"normalised Unicode to NFC ({how})")
        text = nfc
    return text


def _clean_surrogates(text: str, repairs: list[str]) -> str:
    """Replace lone surrogates (not encodable as UTF-8) with U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        fixed = re.sub("[\ud800-\udfff]", "\ufffd", text)
        repairs.append("replaced lone surrogate code points with \ufffd")
        return fixed


def from_text(text: str, name: str = "pasted text") -> Corpus:
    """A corpus from text typed or pasted by a person, with the same checks as an upload."""
    if not isinstance(text, str):
        raise CorpusError(f"expected text (str), got {type(text).__name__}")
    _check_text_limits(text)
    repairs: list[str] = []
    text = _clean_surrogates(text, repairs)
    text = _normalise(text, repairs)
    _check_not_blank(text, "the pasted text")
    return Corpus(name=name, text=text, source="paste", encoding="utf-8", repairs=tuple(repairs))


# --------------------------------------------------------------------------- load_text

_CONTROL_BAD = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")  # not \t \n \v \f \r ESC


def _check_controls(text: str, name: str) -> None:
    """Reject text with many control characters: it is binary data in disguise."""
    n_ctrl = len(_CONTROL_BAD.findall(text))
    if n_ctrl > max(2, 0.01 * len(text)):
        raise CorpusError(
            f"{name}: this looks like binary data, not text ({n_ctrl:,} control characters "
            f"in {len(text):,}); upload a plain-text file (.txt)"
        )


def check_upload_size(n_bytes: int, name: str) -> None:
    """Raise CorpusLimitError when `n_bytes` is over the upload limit (LMCORE_UPLOAD_MB)."""
    limit = get_settings().upload_bytes
    if n_bytes > limit:
        raise CorpusLimitError(
            f"{name} is {n_bytes / 2**20:,.1f} MB, over the upload limit of "
            f"{limit / 2**20:,.0f} MB (set LMCORE_UPLOAD_MB to raise it, or upload a shorter text)"
        )


def input_byte_limit() -> tuple[int, str]:
    """The most bytes an input may have, and the limit that sets it.

    The upload limit (LMCORE_UPLOAD_MB), and 4 bytes per allowed character plus a byte-order
    mark (LMCORE_MAX_CHARS): no encoding we read spends more than 4 bytes on a character, so
    more bytes than that are surely too many characters.
    """
    s = get_settings()
    by_chars = 4 * s.max_chars + 4
    if by_chars < s.upload_bytes:
        return by_chars, "max_chars"
    return s.upload_bytes, "upload_mb"


def read_limited(stream: BinaryIO, name: str, chunk: int = 1 << 20,
                 limit: int | None = None) -> bytes:
    """The bytes of `stream`, reading at most one byte past the input limit (or `limit`).

    An endless or huge source (/dev/zero, a pipe, a 10 GB file) is refused with a
    CorpusLimitError after reading just past the limit, never read whole.
    """
    limit, which = input_byte_limit() if limit is None else (limit, "given")
    parts, n = [], 0
    while n <= limit:
        part = stream.read(min(chunk, limit + 1 - n))
        if not part:
            return b"".join(parts)
        parts.append(part)
        n += len(part)
    s = get_settings()
    if which == "given":
        raise CorpusLimitError(f"{name} is over {limit / 2**20:,.0f} MB, more than such a file "
                               "can hold; is it the right file?")
    if which == "max_chars":
        raise CorpusLimitError(
            f"{name} holds more than {limit:,} bytes, so more than {s.max_chars:,} characters, "
            "over the limit (set LMCORE_MAX_CHARS to raise it, or use a shorter text)")
    raise CorpusLimitError(
        f"{name} is over the upload limit of {limit / 2**20:,.0f} MB (set LMCORE_UPLOAD_MB to "
        "raise it, or use a shorter text)")


def load_text(data: bytes, filename: str) -> Corpus:
    """Decode uploaded bytes into a Corpus, repairing what can be repaired and saying so."""
    name = str(filename or "uploaded text")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CorpusError(f"{name}: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    check_upload_size(len(data), name)
    if not data:
        raise CorpusError(f"{name} is empty (0 bytes): upload a file with some text in it")
    repairs: list[str] = []
    try:
        text, encoding = decode_bytes(data, name, repairs)
    except NotTextError as exc:
        raise CorpusError(str(exc)) from exc
    _check_text_limits(text)  # before the repairs, which only ever shorten the text
    decoded = text
    text = repair_mojibake(text, repairs)
    text = _normalise(text, repairs)
    _check_controls(text, name)
    _check_not_blank(text, name)
    _check_text_limits(text)
    changed = plain(decoded) != text
    return Corpus(name=name, text=text, source="upload", encoding=encoding,
                  repairs=tuple(repairs), decoded=decoded if changed else None)
