"""Arithmetic (range) coding driven by any lmcore language model, through `constriction`.

A model that gives the next token probability p spends -log2 p bits on it, so a model's
cross-entropy on a text *is* a file size. `compress` turns that into bytes: for every token
it asks the model for the next-token distribution, quantises it to `constriction`'s 24-bit
fixed point (every token keeps at least 2**-24, so nothing is uncodable) and range-codes the
token. `decompress` asks the same model the same questions in the same order, so it sees
bit-identical distributions and recovers the tokens exactly. Torch's floats depend on its
thread count, so both sides run the model on one thread (in the calling thread only, see
`lmcore.info.threads`): a file decodes in any process on the machine.

File layout (all integers little-endian):
  b"LMZ" + version (1 byte)
  model digest (8 bytes): sha256 of the model's and the tokenizer's fingerprints
  token count, character count (unsigned LEB128 varints)
  CRC-32 of the UTF-8 text (4 bytes)
  range coder payload (32-bit words)
Decoding with another model stops at the digest with a clear message; a damaged payload is
caught by the CRC instead of coming back as garbage.
"""

from __future__ import annotations

import hashlib
import math
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import constriction
import numpy as np

from lmcore.info.threads import one_torch_thread
from lmcore.models.lm import LanguageModel
from lmcore.models.ngram import NGramLM

if TYPE_CHECKING:
    from lmcore.data.tokenizers import Tokenizer

MAGIC = b"LMZ"
VERSION = 1
PRECISION = 24  # constriction's Categorical fixed-point precision (bits)
FLOOR = 2.0 ** -PRECISION  # the least probability the coder can give a token
Progress = Callable[[float, str], None]


class CodingError(ValueError):
    """A file cannot be coded or decoded as asked; the message says why and what to do."""


# ----------------------------------------------------------------------------- header


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    n, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise CodingError("the file is truncated or not an lmcore compressed file")
        b = data[pos]
        n |= (b & 0x7F) << shift
        pos += 1
        shift += 7
        if not b & 0x80:
            return n, pos


@dataclass(frozen=True)
class Header:
    """What precedes the coded tokens: which model, how many tokens and characters, a CRC."""

    digest: bytes  # 8 bytes
    tokens: int
    chars: int
    crc: int
    version: int = VERSION

    def to_bytes(self) -> bytes:
        return (MAGIC + bytes([self.version]) + self.digest + _varint(self.tokens)
                + _varint(self.chars) + struct.pack("<I", self.crc))

    @classmethod
    def parse(cls, data: bytes) -> tuple[Header, int]:
        """The header and the offset where the payload starts."""
        if len(data) < 4 or data[:3] != MAGIC:
            raise CodingError("not an lmcore compressed file (it does not start with 'LMZ')")
        version = data[3]
        if version != VERSION:
            raise CodingError(f"this file uses format version {version}; this lmcore reads "
                              f"version {VERSION}")
        digest = data[4:12]
        if len(digest) < 8:
            raise CodingError("the file is truncated inside its header")
        tokens, pos = _read_varint(data, 12)
        chars, pos = _read_varint(data, pos)
        if pos + 4 > len(data):
            raise CodingError("the file is truncated inside its header")
        (crc,) = struct.unpack_from("<I", data, pos)
        return cls(digest=digest, tokens=tokens, chars=chars, crc=crc, version=version), pos + 4


def model_digest(model: LanguageModel, tokenizer: Tokenizer | None) -> bytes:
    """8 bytes naming the model and tokenizer pair a file was coded with."""
    tok = tokenizer.fingerprint() if tokenizer is not None else "-"
    return hashlib.sha256(f"{model.fingerprint()}|{tok}".encode()).digest()[:8]


def read_header(data: bytes) -> Header:
    """The header of an lmcore compressed file (raises CodingError if it is not one)."""
    return Header.parse(bytes(data))[0]


# ----------------------------------------------------------------------------- model access


def _tokenizer(model: LanguageModel, tokenizer: Tokenizer | None) -> Tokenizer:
    tok = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    if tok is None:
        raise CodingError("this model has no tokenizer; pass the tokenizer it was trained with")
    if tok.vocab_size != model.vocab_size:
        raise CodingError(f"the tokenizer has {tok.vocab_size} tokens but the model predicts "
                          f"{model.vocab_size}: they do not belong together")
    return tok


def _context(model: LanguageModel, ids: list[int]) -> Sequence[int]:
    """What to pass as context: all of it, except an n-gram only needs its last n-1 tokens."""
    if isinstance(model, NGramLM):
        k = model.order - 1
        if k == 0:
            return []
        return ids[len(ids) - k:] if k < len(ids) else ids
    return ids


def next_probs(model: LanguageModel, ids: list[int]) -> np.ndarray:
    """(V,) float64 probabilities of the next token; encoder and decoder both call this."""
    lp = np.asarray(model.next_logprobs(_context(model, ids)), dtype=np.float64)
    if lp.shape != (model.vocab_size,):
        raise CodingError(f"the model returned {lp.shape} log-probabilities, expected "
                          f"({model.vocab_size},)")
    if np.isnan(lp).any() or np.isposinf(lp).any():
        raise CodingError("the model returned NaN or +inf log-probabilities; it cannot code")
    p = np.exp(lp)
    if not p.sum() > 0:
        raise CodingError("the model gave every token probability 0")
    return p


def _categorical(p: np.ndarray) -> constriction.stream.model.Categorical:
    return constriction.stream.model.Categorical(p, perfect=False)


# ----------------------------------------------------------------------------- coding


@dataclass(frozen=True)
class Encoded:
    """A compressed file and how its size compares with the model's cross-entropy."""

    data: bytes
    header_bytes: int
    tokens: int
    chars: int
    bytes_in: int  # UTF-8 size of the text
    model_bits: float  # sum -log2 p(token): the model's cross-entropy on the text, in bits
    ideal_bits: float  # the same with p clipped to the coder's floor 2**-24
    seconds: float

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def payload_bits(self) -> int:
        return 8 * (len(self.data) - self.header_bytes)

    @property
    def bits_per_char(self) -> float:
        return 8 * self.size / self.chars if self.chars else math.nan

    @property
    def bits_per_byte(self) -> float:
        return 8 * self.size / self.bytes_in if self.bytes_in else math.nan

    @property
    def overhead(self) -> float:
        """Payload bits over the ideal (clipped) code length, as a fraction."""
        return self.payload_bits / self.ideal_bits - 1 if self.ideal_bits else math.nan


def encode(model: LanguageModel, text: str, tokenizer: Tokenizer | None = None,
           progress: Progress | None = None) -> Encoded:
    """Compress `text` with `model` and report the sizes (see `compress`)."""
    tok = _tokenizer(model, tokenizer)
    t0 = time.perf_counter()
    ids = [int(i) for i in tok.encode(text)]
    if tok.decode(ids) != text:
        raise CodingError(f"the model's {getattr(tok, 'kind', '')} tokenizer cannot reproduce "
                          "this text exactly (it maps unseen pieces to [UNK] or drops "
                          "whitespace); use a char, byte or bpe tokenizer for compression")
    bad = [i for i in ids if not 0 <= i < model.vocab_size]
    if bad:
        raise CodingError(f"token id {bad[0]} is outside the model's vocabulary")
    enc = constriction.stream.queue.RangeEncoder()
    model_bits = ideal_bits = 0.0
    n = len(ids)
    ctx: list[int] = []  # grows exactly as the decoder's does
    with one_torch_thread():
        for t in range(n):
            p = next_probs(model, ctx)
            x = ids[t]
            ctx.append(x)
            px = p[x] / p.sum()
            model_bits += -math.log2(px) if px > 0 else math.inf
            ideal_bits += -math.log2(max(px, FLOOR))
            enc.encode(x, _categorical(p))
            if progress is not None and (t % 256 == 0 or t == n - 1):
                progress((t + 1) / n, f"encoded {t + 1:,} of {n:,} tokens")
    data_in = text.encode("utf-8")
    header = Header(digest=model_digest(model, tok), tokens=n, chars=len(text),
                    crc=zlib.crc32(data_in)).to_bytes()
    payload = enc.get_compressed().astype("<u4").tobytes()
    return Encoded(data=header + payload, header_bytes=len(header), tokens=n, chars=len(text),
                   bytes_in=len(data_in), model_bits=model_bits, ideal_bits=ideal_bits,
                   seconds=time.perf_counter() - t0)


def compress(model: LanguageModel, text: str, tokenizer: Tokenizer | None = None,
             progress: Progress | None = None) -> bytes:
    """`text` as bytes coded with `model` (tokenizer: the model's own unless given)."""
    return encode(model, text, tokenizer, progress).data


def decompress(model: LanguageModel, data: bytes, tokenizer: Tokenizer | None = None,
               progress: Progress | None = None) -> str:
    """The text `compress` coded into `data`; the same model (and tokenizer) is required."""
    tok = _tokenizer(model, tokenizer)
    data = bytes(data)
    header, pos = Header.parse(data)
    digest = model_digest(model, tok)
    if header.digest != digest:
        raise CodingError(f"this file was compressed with another model (digest "
                          f"{header.digest.hex()}, this model is {digest.hex()}); decode it "
                          "with the model and tokenizer that compressed it")
    payload = data[pos:]
    if len(payload) % 4:
        raise CodingError("the file is damaged: its payload is not a whole number of words")
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    if header.tokens and not len(words):
        raise CodingError("the file is truncated: the header promises tokens but no data follows")
    dec = constriction.stream.queue.RangeDecoder(words)
    ids: list[int] = []
    n = header.tokens
    with one_torch_thread():
        for t in range(n):
            p = next_probs(model, ids)
            ids.append(int(dec.decode(_categorical(p))))
            if progress is not None and (t % 256 == 0 or t == n - 1):
                progress((t + 1) / n, f"decoded {t + 1:,} of {n:,} tokens")
    text = tok.decode(ids)
    if len(text) != header.chars or zlib.crc32(text.encode("utf-8")) != header.crc:
        raise CodingError("the decoded text fails its checksum: the file is damaged")
    return text
