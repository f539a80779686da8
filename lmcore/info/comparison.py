"""Side-by-side experiments for the Information page: coders on one text, and learning curves.

`compression_table` codes a text with every compressor and every given model (actually coded
and decoded: the round trip is verified by hashing input and output), next to each model's
cross-entropy and own size. Given the training text (`prime`), each compressor also gets a
primed row (it reads the training text first and only the extra bytes count), so the rows
that saw the training text (`saw_training`) can be compared on equal terms. A model that cannot code the text (a word tokenizer that loses
it, a model that fails) gets a row saying why instead of taking the other rows down.
`learning_curve` fits n-gram models on growing prefixes of a source with a known entropy rate
and measures cross-entropy and real code length on held-out text, which both approach the
rate from above as data grows (`lmcore.info.convergence` does the same for a Transformer as
it trains).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from lmcore.info.adjusted import model_bytes
from lmcore.info.coding import decompress, encode
from lmcore.info.compressors import measure
from lmcore.models.lm import LanguageModel

Progress = Callable[[float, str], None]


class Stopped(Exception):
    """The caller's stop event was set between two models."""


def sha256(text: str) -> str:
    """Hex SHA-256 of the UTF-8 text (shown on the page to prove the round trip)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CoderRow:
    """One coder on one text."""

    coder: str
    kind: str  # 'compressor' | 'model'
    size: int  # bytes of the compressed file
    bits_per_char: float
    bits_per_byte: float
    cross_entropy: float | None  # model's -log2 p per char (clipped to the coder's floor)
    model_bytes: int
    adjusted_bits_per_char: float  # (size + model_bytes) * 8 / chars
    encode_s: float
    decode_s: float
    sha_in: str
    sha_out: str  # SHA-256 of what decoding actually gave back ('' when not coded)
    error: str | None = None  # why this coder could not code the text
    saw_training: bool = False  # a primed compressor, or a model trained on the training text

    @property
    def round_trip(self) -> bool:
        return self.error is None and self.sha_in == self.sha_out

    def as_dict(self) -> dict:
        return {**asdict(self), "round_trip": self.round_trip}


def _failed_row(name: str, model: LanguageModel, sha_in: str, exc: Exception) -> CoderRow:
    """The row of a model that could not code the text, with the reason."""
    # a CodingError (a ValueError) already says what to do; anything else is named
    reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
    nan = float("nan")
    try:
        mb = model_bytes(model)
    except Exception:  # the size is only shown beside the reason
        mb = 0
    return CoderRow(coder=name, kind="model", size=0, bits_per_char=nan, bits_per_byte=nan,
                    cross_entropy=None, model_bytes=mb, adjusted_bits_per_char=nan,
                    encode_s=nan, decode_s=nan, sha_in=sha_in, sha_out="", error=reason)


def compression_table(text: str, models: dict[str, LanguageModel],
                      progress: Progress | None = None,
                      stop: threading.Event | None = None, prime: str | None = None,
                      untrained: Sequence[str] = ()) -> list[CoderRow]:
    """Every compressor (alone, then primed with `prime`, the training text, when given),
    then every model, on `text` (models must carry their tokenizer). Model rows count as
    having seen the training text unless named in `untrained`."""
    if not text:
        raise ValueError("there is no text to compress")
    chars, sha_in = len(text), sha256(text)
    rows = []
    if progress is not None and prime:
        progress(0.0, "classical compressors, alone and given the training text first")
    for m in measure(text, prime=prime or None):
        rows.append(CoderRow(coder=m.label, kind="compressor", size=m.size,
                             bits_per_char=m.bits_per_char, bits_per_byte=m.bits_per_byte,
                             cross_entropy=None, model_bytes=0,
                             adjusted_bits_per_char=m.bits_per_char, encode_s=m.seconds,
                             decode_s=m.decode_seconds, sha_in=m.sha_in, sha_out=m.sha_out,
                             saw_training=m.primed))
    for i, (name, model) in enumerate(models.items()):
        if stop is not None and stop.is_set():
            raise Stopped(f"stopped before {name}")

        def step(frac: float, msg: str, i=i, name=name) -> None:
            if progress is not None:
                progress((i + frac / 2) / len(models), f"{name}: {msg}")
            if stop is not None and stop.is_set():
                raise Stopped(f"stopped while coding with {name}")

        try:
            enc = encode(model, text, progress=step)
            t0 = time.perf_counter()
            out = decompress(model, enc.data,
                             progress=lambda frac, msg, step=step: step(1 + frac, msg))
        except Stopped:
            raise
        except Exception as exc:  # a tokenizer that loses the text, a broken model: one row
            rows.append(_failed_row(name, model, sha_in, exc))
            continue
        decode_s = time.perf_counter() - t0
        mb = model_bytes(model)
        rows.append(CoderRow(coder=name, kind="model", size=enc.size,
                             bits_per_char=enc.bits_per_char, bits_per_byte=enc.bits_per_byte,
                             cross_entropy=enc.ideal_bits / chars, model_bytes=mb,
                             adjusted_bits_per_char=8 * (enc.size + mb) / chars,
                             encode_s=enc.seconds, decode_s=decode_s, sha_in=sha_in,
                             sha_out=sha256(out), saw_training=name not in untrained))
    if progress is not None:
        progress(1.0, "done")
    return rows


@dataclass(frozen=True)
class CurvePoint:
    """One n-gram order fitted on one amount of training text."""

    order: int
    train_chars: int
    cross_entropy: float  # bits/char on the held-out text
    code_bits_per_char: float  # real range-coder payload per char on the coded slice
    entropy_rate: float | None
    # the model's cross-entropy on exactly the coded slice: what the payload compares with
    # (the slice is a sample of the held-out text, so it can be easier or harder than all of it)
    code_cross_entropy: float | None = None


def learning_curve(train: str, test: str, sizes: Sequence[int], orders: Sequence[int],
                   entropy_rate: float | None = None, code_chars: int = 2000,
                   progress: Progress | None = None,
                   stop: threading.Event | None = None) -> list[CurvePoint]:
    """KN char n-grams of each order fitted on `train[:size]`, scored and coded on `test`."""
    from lmcore.data.tokenizers import train_tokenizer
    from lmcore.models.lm import score_ids
    from lmcore.models.ngram import NGramConfig, NGramLM

    if not train or not test:
        raise ValueError("the source needs both training and held-out text")
    sizes = sorted({min(int(s), len(train)) for s in sizes if int(s) > 0})
    if not sizes or not orders:
        raise ValueError("choose at least one training size and one order")
    tok = train_tokenizer("char", train)
    test_ids = tok.encode(test)
    part = test[:code_chars]
    part_ids = tok.encode(part)
    out, total, done = [], len(sizes) * len(orders), 0
    for size in sizes:
        for n in orders:
            if stop is not None and stop.is_set():
                raise Stopped("stopped")
            try:
                model = NGramLM.from_tokenizer(tok, train[:size], NGramConfig(order=int(n)))
            except ValueError:  # too little text for this order: no point on the curve
                continue
            ce = score_ids(model, test_ids, test).bits_per_char
            enc = encode(model, part)
            out.append(CurvePoint(order=int(n), train_chars=size, cross_entropy=ce,
                                  code_bits_per_char=enc.payload_bits / max(1, enc.chars),
                                  entropy_rate=entropy_rate,
                                  code_cross_entropy=score_ids(model, part_ids,
                                                               part).bits_per_char))
            done += 1
            if progress is not None:
                progress(done / total, f"order {n}, {size:,} training chars")
    return out
