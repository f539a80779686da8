"""Arithmetic (range) coding driven by any lmcore language model, through `constriction`.

A model that gives the next token probability p spends -log2 p bits on it, so a model's
cross-entropy on a text *is* a file size. `compress` turns that into bytes: for every token
it asks the model for the next-token distribution, quantises it to `constriction`'s 24-bit
fixed point (every token keeps at least 2**-24, so nothing is uncodable) and range-codes the
token. `decompress` asks the same model the same questions in the same order, so it sees
bit-identical distributions and recovers the tokens exactly. Torch's floats depend on its
thread count, so both sides run the model on the thread count the header names (one; two
for a Transformer's lockstep run of 16 streams or more; in the calling thread only, see
`lmcore.info.threads`): a file decodes in any process on the machine.

File layout (format version 4; all integers little-endian):
  b"LMZ" + version (1 byte)
  model digest (8 bytes): sha256 of the model's and the tokenizer's fingerprints (an adaptive
  or mixing model's fingerprint covers its settings and primer)
  what the probabilities depend on, pinned while coding: attention implementation, dtype
  (1 byte each, 0 = no Transformer involved), torch thread count (1 byte), and a 16-bit
  probe of how this machine's float kernels round (`float_probe`)
  streams, token count, character count (unsigned LEB128 varints)
  content checksum (8 bytes): the first 8 bytes of the SHA-256 of the UTF-8 text
  range coder payload (32-bit words)
Decoding with another model, under another attention implementation or dtype, or on a
machine whose probe differs, stops at the header with a message saying which; the thread count is re-pinned by the decoder, so a
process configured with 2 threads decodes a file coded with 1. The header's counts are not
trusted: characters are bounded by the settings (LMCORE_MAX_CHARS), tokens by 4 per
character, and decoding stops once the decoded tokens carry far more information than the
payload holds (a file whose count was raised by hand, or whose payload was damaged); a damaged
payload is caught by the content checksum instead of coming back as garbage. Version 1 files
(CRC-32, no pins), version 2 files (no probe) and version 3 files still decode. Versions 3 and
4 share one layout; they differ in how a Transformer's KV-cache steps are computed
(`lmcore.models.decode_step` from 4 on), whose floats differ in the last bits, so a decoder
steps as the file's version says.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import struct
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import constriction
import numpy as np

from lmcore.info.tables import NGramTable
from lmcore.info.threads import one_torch_thread, torch_threads
from lmcore.models.eval_mode import eval_mode
from lmcore.models.lm import LanguageModel
from lmcore.models.ngram import NGramLM

if TYPE_CHECKING:
    from lmcore.data.tokenizers import Tokenizer

MAGIC = b"LMZ"
VERSION = 4
FIRST_DECODE_STEP = 4  # the first format whose Transformer steps run decode_step
PIN_THREADS = (1, 2)  # the torch thread counts a file may be coded with (header byte 14)
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


ATTENTIONS = ("", "sdpa", "naive", "tiled")  # header byte -> implementation ("" = none)
DTYPES = ("", "float32", "float64", "bfloat16", "float16")


@dataclass(frozen=True)
class Pins:
    """What a model's probabilities depend on beyond its weights, fixed while coding."""

    attention: str = ""  # the Transformer's attention implementation ("" without one)
    dtype: str = ""  # its parameters' dtype
    threads: int = 1  # torch intra-op threads of the coding thread
    probe: int | None = None  # 16 bits of `float_probe` (None: a version 2 file has none)

    def describe(self) -> str:
        if not self.attention:
            return f"no Transformer, {self.threads} torch thread(s)"
        return (f"attention {self.attention!r}, dtype {self.dtype}, {self.threads} torch "
                "thread(s)")


@dataclass(frozen=True)
class Header:
    """What precedes the coded tokens: which model under which pins, how many streams,
    tokens and characters, and a checksum of the text (v1: CRC-32; v2: SHA-256 prefix)."""

    digest: bytes  # 8 bytes
    tokens: int
    chars: int
    crc: int = 0  # version 1 only
    version: int = VERSION
    pins: Pins = Pins()
    streams: int = 1
    sha: bytes = b""  # version 2: first 8 bytes of the text's SHA-256

    def to_bytes(self) -> bytes:
        if self.version == 1:
            return (MAGIC + bytes([1]) + self.digest + _varint(self.tokens)
                    + _varint(self.chars) + struct.pack("<I", self.crc))
        probe = struct.pack("<H", self.pins.probe or 0) if self.version >= 3 else b""
        return (MAGIC + bytes([self.version]) + self.digest
                + bytes([ATTENTIONS.index(self.pins.attention), DTYPES.index(self.pins.dtype),
                         self.pins.threads]) + probe
                + _varint(self.streams) + _varint(self.tokens) + _varint(self.chars) + self.sha)

    @classmethod
    def parse(cls, data: bytes) -> tuple[Header, int]:
        """The header and the offset where the payload starts."""
        if len(data) < 4 or data[:3] != MAGIC:
            raise CodingError("not an lmcore compressed file (it does not start with 'LMZ')")
        version = data[3]
        if not 1 <= version <= VERSION:
            raise CodingError(f"this file uses format version {version}; this lmcore reads "
                              f"versions 1 to {VERSION}")
        digest = data[4:12]
        if len(digest) < 8:
            raise CodingError("the file is truncated inside its header")
        if version == 1:
            tokens, pos = _read_varint(data, 12)
            chars, pos = _read_varint(data, pos)
            if pos + 4 > len(data):
                raise CodingError("the file is truncated inside its header")
            (crc,) = struct.unpack_from("<I", data, pos)
            return cls(digest=digest, tokens=tokens, chars=chars, crc=crc, version=1), pos + 4
        start = 15 if version == 2 else 17
        if len(data) < start:
            raise CodingError("the file is truncated inside its header")
        a, d, threads = data[12], data[13], data[14]
        probe = None if version == 2 else struct.unpack_from("<H", data, 15)[0]
        if a >= len(ATTENTIONS) or d >= len(DTYPES) or threads == 0:
            raise CodingError(f"the header names an attention implementation, dtype or thread "
                              f"count this lmcore does not know (bytes {a}, {d}, {threads}): "
                              "the file is damaged or from a newer lmcore")
        streams, pos = _read_varint(data, start)
        tokens, pos = _read_varint(data, pos)
        chars, pos = _read_varint(data, pos)
        if pos + 8 > len(data):
            raise CodingError("the file is truncated inside its header")
        return cls(digest=digest, tokens=tokens, chars=chars, version=version,
                   pins=Pins(ATTENTIONS[a], DTYPES[d], threads, probe), streams=streams,
                   sha=data[pos:pos + 8]), pos + 8


def model_digest(model: LanguageModel, tokenizer: Tokenizer | None) -> bytes:
    """8 bytes naming the model and tokenizer pair a file was coded with."""
    tok = tokenizer.fingerprint() if tokenizer is not None else "-"
    return hashlib.sha256(f"{model.fingerprint()}|{tok}".encode()).digest()[:8]


def read_header(data: bytes) -> Header:
    """The header of an lmcore compressed file (raises CodingError if it is not one)."""
    return Header.parse(bytes(data))[0]


def content_sha(text: str) -> bytes:
    """The header's checksum of the original text: the first 8 bytes of its SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).digest()[:8]


def _transformers(model: object, seen: set[int] | None = None) -> Iterator[object]:
    """Every Transformer network a model codes with (through adaptive or mixed models)."""
    seen = set() if seen is None else seen
    if model is None or id(model) in seen:
        return
    seen.add(id(model))
    net = getattr(model, "model", None)
    if net is not None and hasattr(getattr(net, "config", None), "attention"):
        yield net
    for attr in ("base", "components"):
        sub = getattr(model, attr, None)
        for m in (sub if isinstance(sub, list | tuple) else [sub]):
            yield from _transformers(m, seen)


@functools.cache
def float_probe(with_torch: bool, steps: bool = True) -> int:
    """16 bits naming how this machine's float kernels round: a hash of exp, log, sums and
    products in numpy float64 (what n-grams and the mixer compute with) and, with a
    Transformer, of float32 matmul, layer norm, GELU, softmax and attention in torch on one
    thread, and with `steps` (format 4 on) of decode_step's single-query attention (two
    batched matmuls). Two machines whose probes differ may compute different probabilities."""
    x = np.linspace(-40.0, 3.0, 2001)
    p = np.exp(x)
    w = np.linspace(-1.5, 2.5, 11)
    F = np.log(p[None, :] + np.linspace(0.1, 1.1, 11)[:, None])  # (11, 2001)
    parts = [p, np.log(p + 0.25), (w[:, None] * F).sum(axis=0), (F * p).sum(axis=1), p / p.sum()]
    h = hashlib.sha256(b"".join(a.tobytes() for a in parts))
    if with_torch:
        import torch
        import torch.nn.functional as tf

        with one_torch_thread(), torch.no_grad():
            a = torch.linspace(-2.0, 2.0, 96 * 128).reshape(96, 128)
            b = torch.cos(torch.linspace(0.0, 40.0, 128 * 128)).reshape(128, 128)
            y = tf.gelu(tf.layer_norm(a @ b, (128,)))
            q = y.reshape(1, 4, 96, 32)
            att = tf.scaled_dot_product_attention(q, q.flip(2), q.cos(), is_causal=True)
            for t in (y, torch.softmax(y, -1), torch.log_softmax(y.double(), -1), att):
                h.update(t.contiguous().numpy().tobytes())
            if steps:
                k, v = q.flip(2).reshape(4, 96, 32), q.cos().reshape(4, 96, 32)
                att_w = torch.softmax(torch.bmm(q.reshape(4, 96, 32)[:, -1:], k.transpose(1, 2)),
                                      -1)  # (4, 1, 96)
                h.update(torch.bmm(att_w, v).numpy().tobytes())  # (4, 1, 32)
    return int.from_bytes(h.digest()[:2], "little")


def model_pins(model: LanguageModel, threads: int = 1, steps: bool = True) -> Pins:
    """The pins a model is coded under: its Transformer's attention and dtype, `threads`
    torch threads (1, or 2 for lockstep streams), and this machine's float probe (`steps`:
    as format 4 on computes it)."""
    for net in _transformers(model):
        dtype = str(next(net.parameters()).dtype).removeprefix("torch.")
        return Pins(attention=net.config.attention, dtype=dtype, threads=threads,
                    probe=float_probe(True, steps))
    return Pins(probe=float_probe(False))


def check_pins(header: Header, model: LanguageModel) -> None:
    """Refuse, with the reason, to decode under pins other than the encoder's."""
    if header.version == 1:
        return
    have, want = model_pins(model), header.pins
    if not (have.attention and want.attention):
        return  # a Transformer on one side only: another model (the digest says so)
    if (have.attention, have.dtype) != (want.attention, want.dtype):
        raise CodingError(f"this file was coded under {want.describe()}; this model runs "
                          f"{have.describe()}: its probabilities would differ. Decode it with "
                          "the model set up as the header says (the same weights, attention "
                          "implementation and dtype)")


def check_probe(header: Header, model: LanguageModel) -> None:
    """Refuse to decode where the float kernels round differently from the encoder's."""
    if header.pins.probe is None:
        return
    here = model_pins(model, steps=header.version >= FIRST_DECODE_STEP).probe
    if here != header.pins.probe:
        raise CodingError(f"this file was coded on a machine whose floating-point kernels "
                          f"round differently (probe {header.pins.probe:04x}, here "
                          f"{here:04x}): this machine would not reproduce its probabilities. "
                          "Decode it where it was coded (same CPU kind, numpy and torch)")


def max_tokens(chars: int) -> int:
    """The most tokens a text of `chars` characters can have: every token of a char, byte or
    BPE tokenizer stands for at least one UTF-8 byte, and a character has at most 4."""
    return 4 * chars


def check_counts(header: Header, payload_bytes: int) -> None:
    """Refuse a header whose counts no real file has (before spending time decoding)."""
    from lmcore.settings import Settings

    limit = Settings.from_env().max_chars
    if header.chars > limit:
        raise CodingError(f"the header claims {header.chars:,} characters, over the limit "
                          f"LMCORE_MAX_CHARS={limit:,}: the file is damaged (or raise the "
                          "limit)")
    if header.tokens > max_tokens(header.chars):
        raise CodingError(f"the header claims {header.tokens:,} tokens for {header.chars:,} "
                          "characters (at most 4 a character): the file is damaged")
    if header.tokens and not payload_bytes:
        raise CodingError("the file is truncated: the header promises tokens but no data follows")
    if (header.tokens == 0) != (header.chars == 0):
        raise CodingError("the header's token and character counts disagree: the file is "
                          "damaged")
    if not 0 <= header.streams <= max(1, header.tokens):
        raise CodingError(f"the header claims {header.streams:,} streams for "
                          f"{header.tokens:,} tokens: the file is damaged")


class InformationBudget:
    """Stops a decoder that reads far past its payload. A range coder's output is never
    shorter than the information of what it coded (sum -log2 p, within a few words), so a
    decoded stream carrying more than twice the payload's bits plus 4 KiB is not the coded
    text: the header's count was raised, or the payload damaged."""

    def __init__(self, payload_bytes: int):
        self.limit = 2 * 8 * payload_bytes + 32768
        self.bits = 0.0

    def spend(self, bits: float) -> None:
        self.bits += bits
        if self.bits > self.limit:
            raise CodingError(f"the file is damaged: decoding it yields more information than "
                              f"its {self.limit // 16 - 2048:,}-byte payload can hold (its "
                              "token count or payload was altered)")


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


def _token_ids(tok: Tokenizer, model: LanguageModel, text: str) -> list[int]:
    ids = [int(i) for i in tok.encode(text)]
    if tok.decode(ids) != text:
        raise CodingError(f"the model's {getattr(tok, 'kind', '')} tokenizer cannot reproduce "
                          "this text exactly (it maps unseen pieces to [UNK] or drops "
                          "whitespace); use a char, byte or bpe tokenizer for compression")
    bad = [i for i in ids if not 0 <= i < model.vocab_size]
    if bad:
        raise CodingError(f"token id {bad[0]} is outside the model's vocabulary")
    return ids


def _pinned_threads(threads: int):
    """The coding thread's torch thread count, as pinned in the header."""
    if threads not in PIN_THREADS:
        raise CodingError(f"this file was coded with {threads} torch threads; this lmcore codes "
                          f"(and decodes) with {' or '.join(map(str, PIN_THREADS))} only")
    return torch_threads(threads)


def _steps_as_coded(version: int) -> contextlib.AbstractContextManager:
    """A Transformer steps as the file's format computed it: through `forward` before format
    4 (lmcore.info.streams.forward_steps), else through decode_step."""
    if version >= FIRST_DECODE_STEP or "lmcore.models.transformer" not in sys.modules:
        return contextlib.nullcontext()  # (no torch import for an n-gram's file)
    from lmcore.info.streams import forward_steps

    return forward_steps()


def encode(model: LanguageModel, text: str, tokenizer: Tokenizer | None = None,
           progress: Progress | None = None, *, plain: bool = False,
           streams: int | None = None) -> Encoded:
    """Compress `text` with `model` and report the sizes (see `compress`).

    A Transformer codes in lockstep streams with a KV cache (lmcore.info.streams), an n-gram
    through its per-context table and the coder's batch call; `plain=True` codes one token at
    a time through `next_logprobs` instead: the short reference the fast paths are held to
    (a plain Transformer file says so in its header: 0 streams). `streams` sets a
    Transformer's stream count (default: one per 512 tokens, at most 64); more streams code
    faster and spend a little more at each stream's start."""
    tok = _tokenizer(model, tokenizer)
    t0 = time.perf_counter()
    ids = _token_ids(tok, model, text)
    pins = model_pins(model)
    enc = constriction.stream.queue.RangeEncoder()
    model_bits = ideal_bits = 0.0
    n = len(ids)
    ctx: list[int] = []  # grows exactly as the decoder's does
    transformer, ngram = is_transformer(model), isinstance(model, NGramLM)
    from lmcore.info.streams import lockstep_threads, stream_count

    streams = (0 if plain else stream_count(n, streams)) if transformer else 1
    if transformer and not plain:
        pins = model_pins(model, threads=lockstep_threads(streams))
    with _pinned_threads(pins.threads):
        if transformer and not plain:
            model_bits, ideal_bits = _encode_streams(model, ids, enc, progress, streams)
        elif ngram and not plain:
            model_bits, ideal_bits = _encode_table(NGramTable(model), ids, enc, progress)
        for t in range(n if plain or not (transformer or ngram) else 0):
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
    header = Header(digest=model_digest(model, tok), tokens=n, chars=len(text), pins=pins,
                    streams=streams, sha=content_sha(text)).to_bytes()
    payload = enc.get_compressed().astype("<u4").tobytes()
    return Encoded(data=header + payload, header_bytes=len(header), tokens=n, chars=len(text),
                   bytes_in=len(data_in), model_bits=model_bits, ideal_bits=ideal_bits,
                   seconds=time.perf_counter() - t0)


def compress(model: LanguageModel, text: str, tokenizer: Tokenizer | None = None,
             progress: Progress | None = None) -> bytes:
    """`text` as bytes coded with `model` (tokenizer: the model's own unless given)."""
    return encode(model, text, tokenizer, progress).data


def _damaged(exc: Exception) -> CodingError:
    why = str(exc).strip().rstrip(".") or type(exc).__name__
    return CodingError(f"the file is damaged: its payload does not decode under this model "
                       f"({why})")


def decompress(model: LanguageModel, data: bytes, tokenizer: Tokenizer | None = None,
               progress: Progress | None = None, *, plain: bool = False) -> str:
    """The text `compress` coded into `data`; the same model (and tokenizer) is required.
    Every failure, a damaged or altered file included, is a CodingError saying why.
    `plain=True` asks an n-gram through `next_logprobs` token by token instead of its
    per-context table: the reference the fast path is timed against (the same floats)."""
    tok = _tokenizer(model, tokenizer)
    data = bytes(data)
    header, pos = Header.parse(data)
    check_pins(header, model)
    digest = model_digest(model, tok)
    if header.digest != digest:
        raise CodingError(f"this file was compressed with another model (digest "
                          f"{header.digest.hex()}, this model is {digest.hex()}); decode it "
                          "with the model and tokenizer that compressed it")
    check_probe(header, model)
    payload = data[pos:]
    if len(payload) % 4:
        raise CodingError("the file is damaged: its payload is not a whole number of words")
    check_counts(header, len(payload))
    transformer = is_transformer(model)
    lockstep = header.version > 1 and transformer and header.streams >= 1
    if header.streams != 1 and not transformer:
        raise CodingError(f"this file was coded in {header.streams} streams, which only a "
                          "Transformer coder writes; this model codes one stream")
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    dec = constriction.stream.queue.RangeDecoder(words)
    budget = InformationBudget(len(payload))
    ids: list[int] = []
    n = header.tokens
    if isinstance(model, NGramLM) and not plain:
        table = NGramTable(model)  # the encoder's floats, each context computed once
        order = model.order

        def probs(ids: list[int]) -> np.ndarray:
            return table.probs(ids[max(0, len(ids) - order):])
    else:
        def probs(ids: list[int]) -> np.ndarray:
            return next_probs(model, ids)
    with _pinned_threads(header.pins.threads), _steps_as_coded(header.version):
        if lockstep:
            ids = _decode_streams(model, header, dec, budget, progress)
        for t in range(0 if lockstep else n):
            try:
                p = probs(ids)
            except ValueError as exc:  # e.g. a decoded id the model refuses as context
                raise _damaged(exc) from None
            try:
                x = int(dec.decode(_categorical(p)))
            except (AssertionError, ValueError, RuntimeError) as exc:  # constriction's own
                raise _damaged(exc) from None
            ids.append(x)
            budget.spend(-math.log2(max(p[x] / p.sum(), FLOOR)))
            if progress is not None and (t % 256 == 0 or t == n - 1):
                progress((t + 1) / n, f"decoded {t + 1:,} of {n:,} tokens")
    return _verified(tok, ids, header)


# ----------------------------------------------------------------------------- fast paths


def is_transformer(model: LanguageModel) -> bool:
    """A TransformerLM (checked without importing torch when no Transformer was loaded)."""
    mod = sys.modules.get("lmcore.models.transformer")
    return mod is not None and isinstance(model, mod.TransformerLM)


def _bits(P: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """(model bits, clipped ideal bits) of tokens x under the rows of P (unnormalised)."""
    px = P[np.arange(len(x)), x] / P.sum(axis=1)
    with np.errstate(divide="ignore"):
        model = float(-np.log2(px).sum())
    return model, float(-np.log2(np.maximum(px, FLOOR)).sum())


def _encode_table(table: NGramTable, ids: list[int], enc, progress: Progress | None,
                  block: int = 4096) -> tuple[float, float]:
    """An n-gram's tokens coded in blocks through the range coder's batch call: the table
    computes every context's distribution in one vectorised call (lmcore.info.tables), the
    same floats the decoder gets from it one context at a time."""
    from lmcore.info.tables import _history

    n, model_bits, ideal_bits = len(ids), 0.0, 0.0
    fam = constriction.stream.model.Categorical(perfect=False)
    for a in range(0, n, block):
        b = min(n, a + block)
        hists = [_history(table.model, ids[max(0, t - table.order):t]) for t in range(a, b)]
        table.fill(hists)
        P = np.stack([table.probs(ids[max(0, t - table.order):t]) for t in range(a, b)])
        x = np.asarray(ids[a:b], dtype=np.int32)
        m, i = _bits(P, x)
        model_bits, ideal_bits = model_bits + m, ideal_bits + i
        enc.encode(x, fam, P)
        if progress is not None:
            progress(b / n, f"encoded {b:,} of {n:,} tokens")
    return model_bits, ideal_bits


def _encode_streams(lm, ids: list[int], enc, progress: Progress | None,
                    streams: int) -> tuple[float, float]:
    """A Transformer's tokens coded in `streams` lockstep streams (lmcore.info.streams)."""
    from lmcore.info.streams import Lockstep, chunk_lengths

    lengths = chunk_lengths(len(ids), streams)
    starts = np.cumsum([0] + lengths[:-1])
    arr = np.asarray(ids, dtype=np.int64)
    with eval_mode(lm.model):  # once for the run, not per step
        return _encode_steps(Lockstep(lm, streams), lm, arr, starts, lengths, enc, progress)


def _encode_steps(run, lm, arr: np.ndarray, starts: np.ndarray, lengths: list[int], enc,
                  progress: Progress | None) -> tuple[float, float]:
    """Step the streams, coding token t of every stream; (model bits, clipped ideal bits)."""
    B, steps = len(lengths), (lengths[0] if lengths else 0)
    fam = constriction.stream.model.Categorical(perfect=False)
    model_bits = ideal_bits = 0.0
    for t in range(steps):
        active = [b for b in range(B) if t < lengths[b]]  # the first k streams
        P = run.probs()[:len(active)]  # (k, V)
        x = arr[starts[:len(active)] + t].astype(np.int32)
        m, i = _bits(P, x)
        model_bits, ideal_bits = model_bits + m, ideal_bits + i
        enc.encode(x, fam, P)
        if t + 1 < steps:
            run.push(np.concatenate([x, np.full(B - len(active), lm.bos_id)]))
        if progress is not None and (t % 64 == 0 or t == steps - 1):
            progress((t + 1) / steps, f"encoded step {t + 1:,} of {steps:,} ({B} streams)")
    return model_bits, ideal_bits


def _decode_streams(lm, header: Header, dec, budget: InformationBudget,
                    progress: Progress | None) -> list[int]:
    from lmcore.info.streams import Lockstep, chunk_lengths

    B, n = header.streams, header.tokens
    lengths = chunk_lengths(n, B)
    with eval_mode(lm.model):
        out = _decode_steps(Lockstep(lm, B), lm, lengths, dec, budget, progress)
    return [int(v) for b in range(B) for v in out[b, :lengths[b]]]


def _decode_steps(run, lm, lengths: list[int], dec, budget: InformationBudget,
                  progress: Progress | None) -> np.ndarray:
    """(B, steps) token ids: the encoder's steps, each decoding token t of every stream."""
    B, steps = len(lengths), (lengths[0] if lengths else 0)
    fam = constriction.stream.model.Categorical(perfect=False)
    out = np.zeros((B, steps), dtype=np.int64)
    for t in range(steps):
        k = sum(1 for b in range(B) if t < lengths[b])
        P = run.probs()[:k]
        try:
            x = np.asarray(dec.decode(fam, P), dtype=np.int64)
        except (AssertionError, ValueError, RuntimeError) as exc:
            raise _damaged(exc) from None
        out[:k, t] = x
        budget.spend(_bits(P, x)[1])
        if t + 1 < steps:
            run.push(np.concatenate([x, np.full(B - k, lm.bos_id)]))
        if progress is not None and (t % 64 == 0 or t == steps - 1):
            progress((t + 1) / steps, f"decoded step {t + 1:,} of {steps:,} ({B} streams)")
    return out


def _verified(tok: Tokenizer, ids: list[int], header: Header) -> str:
    """The decoded text, once its length and checksum match the header's."""
    try:
        text = tok.decode(ids)
    except Exception as exc:  # a damaged payload can decode to ids no text has
        raise _damaged(exc) from None
    if header.version == 1:
        ok = zlib.crc32(text.encode("utf-8")) == header.crc
    else:
        ok = content_sha(text) == header.sha
    if len(text) != header.chars or not ok:
        raise CodingError("the decoded text fails its checksum: the file is damaged")
    return text
