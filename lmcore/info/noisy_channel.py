"""The noisy-channel model of language: recover text from a corrupted copy with an LM prior.

A known character error model corrupts held-out text: each character of the alphabet is, with
probability p, replaced by another alphabet character chosen uniformly (substitutions only, so
the observed text has the same length and the character error rate is a Hamming distance).
Decoding picks argmax_text P(text) P(observed | text): the channel term is
(1 - p) per kept character and p / (A - 1) per substitution; the prior P(text) is the lab's
character n-gram model. Viterbi over the candidate lattice: hypotheses that share their last
n - 1 characters have the same future, so only the best of them is kept (exact Viterbi when the
beam holds every surviving state; otherwise a beam search over the states).

A unigram prior almost never overturns the channel (a substitution must beat a factor
(1 - p)(A - 1) / p in prior odds with no context to help: only a very rare observed
character loses), so n = 1 corrects next to nothing; context is what lets the language model
hear through the noise.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from lmcore.models.ngram import NGramLM


@dataclass(frozen=True)
class CharErrorModel:
    """Substitute each alphabet character with probability `p`, uniformly by another one."""

    alphabet: str
    p: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 < self.p < 1.0:
            raise ValueError(f"the character error rate must lie in (0, 1), got {self.p}")
        if len(set(self.alphabet)) < 2:
            raise ValueError("the alphabet needs at least two distinct characters")

    def corrupt(self, text: str, seed: int = 0) -> str:
        """A seeded corrupted copy: characters outside the alphabet are left alone."""
        letters = sorted(set(self.alphabet))
        index = {c: i for i, c in enumerate(letters)}
        rng = np.random.default_rng(seed)
        hit = rng.random(len(text)) < self.p
        shift = rng.integers(1, len(letters), len(text))  # never the same character
        out = list(text)
        for i in np.flatnonzero(hit):
            j = index.get(text[i])
            if j is not None:
                out[i] = letters[(j + int(shift[i])) % len(letters)]
        return "".join(out)

    def log_keep(self) -> float:
        return math.log1p(-self.p)

    def log_substitute(self) -> float:
        return math.log(self.p / (len(set(self.alphabet)) - 1))


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Share of positions that differ (both texts have the same length here)."""
    if len(reference) != len(hypothesis):
        raise ValueError("substitution-only CER needs texts of equal length")
    if not reference:
        return 0.0
    return sum(a != b for a, b in zip(reference, hypothesis, strict=True)) / len(reference)


def decode(observed: str, model: NGramLM, errors: CharErrorModel, beam: int = 16) -> str:
    """argmax_text P(text) P(observed | text) over same-length texts (Viterbi with a beam)."""
    tok = model.tokenizer
    if tok is None:
        raise ValueError("the noisy-channel decoder needs a character n-gram with a tokenizer")
    if beam < 1:
        raise ValueError(f"the beam must hold at least one hypothesis, got {beam}")
    letters = sorted(set(errors.alphabet))
    ids = [tok.token_to_id(c) for c in letters]
    alpha = np.array([i for i in ids if i is not None], dtype=np.int64)  # candidate ids
    keep, sub = errors.log_keep(), errors.log_substitute()
    in_alpha = set(alpha.tolist())
    ctx_len = model.order - 1
    cache: dict[tuple[int, ...], np.ndarray] = {}

    def prior(history: tuple[int, ...]) -> np.ndarray:
        key = history[-ctx_len:] if ctx_len else ()
        if len(history) < ctx_len:
            key = ("<s>", *history)  # short histories still see the sentence start
        if key not in cache:
            cache[key] = model.next_logprobs(list(history[-ctx_len:]) if ctx_len else [])
        return cache[key]

    hyps: list[tuple[float, tuple[int, ...]]] = [(0.0, ())]
    for ch in observed:
        obs = tok.token_to_id(ch)
        expanded: dict[tuple[int, ...], tuple[float, tuple[int, ...]]] = {}
        for score, hist in hyps:
            lp = prior(hist)
            if obs is None or obs not in in_alpha:
                cands = [(obs if obs is not None else tok.unk_id, 0.0)]
            else:
                chan = np.where(alpha == obs, keep, sub)
                total = lp[alpha] + chan
                top = np.argsort(-total)[: beam]
                cands = [(int(alpha[j]), float(chan[j])) for j in top]
            for c, ch_lp in cands:
                s = score + float(lp[c]) + ch_lp
                new = (*hist, c)
                state = new[-ctx_len:] if ctx_len else ()
                if len(new) < ctx_len:
                    state = ("<s>", *new)
                if state not in expanded or s > expanded[state][0]:
                    expanded[state] = (s, new)
        hyps = sorted(expanded.values(), key=lambda h: -h[0])[:beam]
    best = hyps[0][1]
    unk = tok.unk_id
    return "".join(observed[i] if c == unk else tok.id_to_token(c)
                   for i, c in enumerate(best))


@dataclass(frozen=True)
class ChannelDecodeRow:
    """CER of one n-gram order's decoding of the same corrupted text."""

    order: int
    chars: int
    cer_before: float
    cer_after: float
    fixed: int  # corrupted characters restored
    broken: int  # correct characters the decoder changed
    decoded: str

    def as_row(self) -> dict:
        return {"n": self.order, "characters": self.chars, "CER before": self.cer_before,
                "CER after": self.cer_after, "errors fixed": self.fixed,
                "errors introduced": self.broken}


@dataclass(frozen=True)
class NoisyChannelResult:
    original: str
    observed: str
    error_rate: float
    rows: list[ChannelDecodeRow]


def noisy_channel_table(models: Mapping[int, NGramLM], text: str, error_rate: float = 0.05,
                        seed: int = 0, beam: int = 8,
                        progress: Callable[[float, str], None] | None = None,
                        stop: threading.Event | None = None) -> NoisyChannelResult:
    """Corrupt `text` once (seeded) over the models' alphabet, decode it with each order's
    n-gram prior, and report CER before and after."""
    if not text:
        raise ValueError("there is no held-out text to corrupt: load a longer corpus")
    if not models:
        raise ValueError("choose at least one n-gram order")
    tok = next(iter(models.values())).tokenizer
    if tok is None:
        raise ValueError("the noisy-channel decoder needs character n-grams with a tokenizer")
    alphabet = "".join(c for c in sorted(set(text)) if tok.token_to_id(c) is not None
                       and len(tok.id_to_token(tok.token_to_id(c))) == 1)
    errors = CharErrorModel(alphabet, error_rate)
    observed = errors.corrupt(text, seed)
    before = character_error_rate(text, observed)
    rows = []
    for i, (n, model) in enumerate(sorted(models.items())):
        if stop is not None and stop.is_set():
            break
        if progress is not None:
            progress(i / len(models), f"decoding with the {n}-gram prior")
        out = decode(observed, model, errors, beam)
        fixed = sum(o != t and d == t for t, o, d in zip(text, observed, out, strict=True))
        broken = sum(o == t and d != t for t, o, d in zip(text, observed, out, strict=True))
        rows.append(ChannelDecodeRow(n, len(text), before, character_error_rate(text, out),
                                     fixed, broken, out))
    if progress is not None:
        progress(1.0, "done")
    return NoisyChannelResult(text, observed, error_rate, rows)
