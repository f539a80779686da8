"""The one contract every lmcore language model speaks (makemore's lesson).

Given token ids, a model returns next-token log-probabilities (natural log). From that alone
come per-token bits, perplexity, bits per character, sampling and arithmetic coding, so an
n-gram and a Transformer are interchangeable wherever a model is asked for.

Conventions
- `context` never contains the beginning-of-sequence marker: an empty context means "at the
  start of a text". Each model handles its own start state (`<s>` for n-grams, a BOS token
  for Transformers).
- The distribution returned covers the model's whole vocabulary (`vocab_size` entries) and is
  normalised: `logsumexp == 0` up to float rounding. Ids a model can never emit get `-inf`.
- `token_logprobs(ids)[t] == next_logprobs(ids[:t])[ids[t]]` for every t; models override it
  with a batched computation, but the values must agree with the sequential path to 1e-5.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

LN2 = math.log(2.0)


class TextTokenizer(Protocol):
    """What a model needs of a tokenizer to read and write text (`lmcore.data.tokenizers`
    `Tokenizer` is one): a beginning-of-sequence id, text to ids, and ids back to text."""

    bos_id: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


class LanguageModel(ABC):
    """Token ids in, next-token log-probabilities out."""

    vocab_size: int

    @abstractmethod
    def next_logprobs(self, context: Sequence[int]) -> np.ndarray:
        """(V,) float64 natural-log probabilities of the next token after `context`."""

    def token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        """(T,) natural-log probability of each `ids[t]` given `ids[:t]`."""
        ids = list(ids)
        return np.array([self.next_logprobs(ids[:t])[ids[t]] for t in range(len(ids))],
                        dtype=np.float64)

    @abstractmethod
    def fingerprint(self) -> str:
        """A short stable hash of the model's parameters: equal iff the model is the same."""

    def num_parameters(self) -> int:
        """How many numbers define the model (for the 'adjusted' compression rate)."""
        return 0


@dataclass(frozen=True)
class Score:
    """Held-out numbers in the units the whole lab reports."""

    bits: float  # total -log2 p over all scored tokens
    tokens: int
    chars: int
    bytes: int
    zero_prob_tokens: int = 0  # tokens the model gave probability 0 (MLE n-grams)

    @property
    def bits_per_token(self) -> float:
        return self.bits / self.tokens if self.tokens else float("nan")

    @property
    def perplexity(self) -> float:
        return 2.0 ** self.bits_per_token if self.tokens else float("nan")

    @property
    def bits_per_char(self) -> float:
        return self.bits / self.chars if self.chars else float("nan")

    @property
    def bits_per_byte(self) -> float:
        return self.bits / self.bytes if self.bytes else float("nan")


def score_ids(model: LanguageModel, ids: Sequence[int], text: str | None = None) -> Score:
    """Score `ids` (the tokens of `text`) under `model`; chars/bytes come from `text`."""
    lp = model.token_logprobs(ids)
    zero = int(np.isneginf(lp).sum())
    bits = float(-lp.sum() / LN2) if len(lp) else 0.0
    chars = len(text) if text is not None else 0
    nbytes = len(text.encode("utf-8")) if text is not None else 0
    return Score(bits=bits, tokens=len(lp), chars=chars, bytes=nbytes, zero_prob_tokens=zero)


def sample_next(logprobs: np.ndarray, rng: np.random.Generator, *, temperature: float = 1.0,
                top_k: int | None = None, top_p: float | None = None) -> int:
    """Draw one token id from natural-log probabilities with temperature, top-k and top-p."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    lp = np.asarray(logprobs, dtype=np.float64)
    if temperature == 0:
        return int(np.argmax(lp))
    z = lp / temperature
    if top_k is not None and 0 < top_k < len(z):
        kth = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= kth, z, -np.inf)
    z = z - np.max(z)
    p = np.exp(z)
    p /= p.sum()
    if top_p is not None and 0 < top_p < 1:
        order = np.argsort(-p, kind="stable")
        cum = np.cumsum(p[order])
        keep = order[: int(np.searchsorted(cum, top_p) + 1)]
        mask = np.zeros_like(p, dtype=bool)
        mask[keep] = True
        p = np.where(mask, p, 0.0)
        p /= p.sum()
    return int(rng.choice(len(p), p=p))


def generate_ids(model: LanguageModel, context: Sequence[int], n: int, *, seed: int = 0,
                 temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, stop_id: int | None = None) -> list[int]:
    """Sample `n` tokens after `context` through the contract (models may offer faster paths)."""
    rng = np.random.default_rng(seed)
    out = list(context)
    for _ in range(n):
        tok = sample_next(model.next_logprobs(out), rng, temperature=temperature,
                          top_k=top_k, top_p=top_p)
        if stop_id is not None and tok == stop_id:
            break
        out.append(tok)
    return out[len(context):]
