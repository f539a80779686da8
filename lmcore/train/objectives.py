"""Causal, prefix and masked LM over one backbone: they differ only in mask and loss positions.

UniLM's view: the same Transformer becomes a decoder (causal mask, loss on every next token),
a prefix LM (bidirectional inside a per-sample prefix, causal after it, loss on the suffix
only) or a BERT-style encoder (no mask, 15% of positions corrupted 80/10/10, loss only there).
Every objective has `loss(model, batch, gen)` on a (B, W) window of token ids, the trainer's
only call, and `window(context)` (how many ids one sample needs).

Adding an objective: a class with `name`, `mask`, `window()` and `loss()` (the `Objective`
protocol) and one entry in `OBJECTIVES`. Scoring them fairly on held-out text lives in
`fair_metrics.py`, filling blanks in `fill_blanks.py`, training all of them on one budget in
`one_budget.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from lmcore.data.tokenizers import CLS_ID, MASK_ID, N_SPECIAL, SEP_ID
from lmcore.train.denoising import Denoising

LN2 = math.log(2.0)


class Objective(Protocol):
    """What the trainer needs of an objective: a name, the attention mask, window and loss."""

    name: str
    mask: str  # the attention mask the backbone is built and trained with

    def window(self, context: int) -> int:
        """Token ids one training sample needs for a model context of `context`."""
        ...

    def loss(self, model: torch.nn.Module, batch: torch.Tensor,
             gen: torch.Generator | None = None) -> torch.Tensor:
        """Scalar training loss of a (B, window) batch of ids; `gen` seeds random choices."""
        ...


def vocab_size(model: torch.nn.Module) -> int:
    """The size of the vocabulary a Transformer was built with."""
    return int(model.config.vocab_size)


@dataclass
class CausalLM:
    """Decoder-only: predict token t+1 from tokens 0..t (causal mask), loss on every position."""

    name: str = "causal"
    mask: str = "causal"

    def window(self, context: int) -> int:
        return context + 1  # inputs are ids[:-1], targets ids[1:]

    def loss(self, model: torch.nn.Module, batch: torch.Tensor,
             gen: torch.Generator | None = None) -> torch.Tensor:
        x, y = batch[:, :-1], batch[:, 1:]  # (B, T), (B, T)
        logits = model(x, mask="causal")  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def suffix_positions(prefix_len: torch.Tensor, T: int) -> torch.Tensor:
    """Bool (B, T): input positions whose target lies after the prefix (i >= P - 1).

    Position i predicts token i + 1. Position P - 1 is the last prefix position: it sees the
    whole prefix but its target (token P) is outside it, so it carries loss; earlier prefix
    positions would see their own target inside the bidirectional block, so they do not.
    """
    i = torch.arange(T, device=prefix_len.device)
    return i[None, :] >= (prefix_len[:, None] - 1)


@dataclass
class PrefixLM:
    """Prefix LM: prefix length drawn per sample, bidirectional inside it, loss on the suffix."""

    name: str = "prefix"
    mask: str = "prefix"
    min_prefix: int = 1

    def window(self, context: int) -> int:
        return context + 1

    def draw_prefix(self, B: int, T: int, gen: torch.Generator | None) -> torch.Tensor:
        """(B,) prefix lengths uniform in min_prefix..T-1 (at least one suffix target)."""
        if T < 2:
            raise ValueError("a prefix LM needs a context of at least 2 tokens")
        lo = min(max(1, self.min_prefix), T - 1)
        return torch.randint(lo, T, (B,), generator=gen)

    def loss(self, model: torch.nn.Module, batch: torch.Tensor,
             gen: torch.Generator | None = None) -> torch.Tensor:
        x, y = batch[:, :-1], batch[:, 1:]  # (B, T)
        B, T = x.shape
        plen = self.draw_prefix(B, T, gen).to(x.device)  # (B,)
        logits = model(x, mask="prefix", prefix_len=plen)  # (B, T, V)
        keep = suffix_positions(plen, T)  # (B, T)
        return F.cross_entropy(logits[keep], y[keep])  # mean over suffix tokens


@dataclass
class Corruption:
    """BERT's corrupted input and which positions were chosen and how they were replaced."""

    inputs: torch.Tensor  # (B, T) ids fed to the model
    chosen: torch.Tensor  # (B, T) bool: positions that carry loss
    masked: torch.Tensor  # (B, T) bool: chosen and replaced by [MASK]
    randomized: torch.Tensor  # (B, T) bool: chosen and replaced by a random token


def nsp_segments(T: int) -> tuple[int, int]:
    """Lengths of segments A and B in a [CLS] A [SEP] B [SEP] sample of T ids."""
    if T < 5:
        raise ValueError("next-sentence prediction needs a context of at least 5 tokens")
    la = (T - 3) // 2
    return la, T - 3 - la


def wrap_pair(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[CLS] a [SEP] b [SEP] for segments a (B, la) and b (B, lb) -> (B, la + lb + 3)."""
    B = a.shape[0]
    cls = torch.full((B, 1), CLS_ID, dtype=a.dtype, device=a.device)
    sep = torch.full((B, 1), SEP_ID, dtype=a.dtype, device=a.device)
    return torch.cat([cls, a, sep, b, sep], dim=1)


@dataclass
class MaskedLM:
    """BERT: choose `rate` of positions; of those 80% [MASK], 10% random, 10% kept; loss there.

    With `nsp_weight > 0` (and a model built with `nsp_head=True`) each sample becomes
    [CLS] A [SEP] B [SEP], B the true continuation half the time, and the [CLS] state
    predicts which: BERT's next-sentence-prediction auxiliary loss.
    """

    rate: float = 0.15
    mask_frac: float = 0.8
    random_frac: float = 0.1
    nsp_weight: float = 0.0
    mask_id: int = MASK_ID
    n_special: int = N_SPECIAL
    name: str = "masked"
    mask: str = "bidirectional"
    last_nsp_accuracy: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.rate <= 1:
            raise ValueError(f"masking rate must lie in (0, 1], got {self.rate}")
        if self.mask_frac < 0 or self.random_frac < 0 or self.mask_frac + self.random_frac > 1:
            raise ValueError("mask_frac and random_frac must be >= 0 and sum to at most 1")

    def window(self, context: int) -> int:
        return context  # no shift: the targets are the inputs themselves

    def corrupt(self, batch: torch.Tensor, vocab_size: int,
                gen: torch.Generator | None = None) -> Corruption:
        """Choose positions (never special tokens) and replace them 80/10/10."""
        if vocab_size <= self.n_special:
            raise ValueError("the vocabulary has no ordinary tokens to draw random ones from")
        B, T = batch.shape
        eligible = batch >= self.n_special  # (B, T)
        chosen = (torch.rand(B, T, generator=gen) < self.rate).to(batch.device) & eligible
        if not bool(chosen.any()) and bool(eligible.any()):  # never a batch without targets
            flat = eligible.flatten().nonzero()[:, 0]
            pick = flat[torch.randint(len(flat), (1,), generator=gen)]
            chosen.view(-1)[pick] = True
        u = torch.rand(B, T, generator=gen).to(batch.device)
        masked = chosen & (u < self.mask_frac)
        randomized = chosen & (u >= self.mask_frac) & (u < self.mask_frac + self.random_frac)
        rand_ids = torch.randint(self.n_special, vocab_size, (B, T), generator=gen)
        inputs = batch.masked_fill(masked, self.mask_id)
        inputs = torch.where(randomized, rand_ids.to(batch.device), inputs)
        return Corruption(inputs, chosen, masked, randomized)

    def nsp_pairs(self, batch: torch.Tensor,
                  gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """([CLS] A [SEP] B [SEP] ids (B, T), is-next labels (B,)) from windows (B, T)."""
        B, T = batch.shape
        la, lb = nsp_segments(T)
        a, b_true = batch[:, :la], batch[:, la:la + lb]
        is_next = (torch.rand(B, generator=gen) < 0.5).to(batch.device)  # (B,)
        if B > 1:  # another window of the corpus (windows are drawn at random offsets)
            b_fake = batch.roll(1, dims=0)[:, T - lb:]
        else:  # one sample only: the segments in the wrong order (ALBERT's SOP)
            a_swap = batch[:, lb:lb + la]
            a = torch.where(is_next[:, None], a, a_swap)
            b_fake = batch[:, :lb]
        b = torch.where(is_next[:, None], b_true, b_fake)
        return wrap_pair(a, b), is_next.long()

    def loss(self, model: torch.nn.Module, batch: torch.Tensor,
             gen: torch.Generator | None = None) -> torch.Tensor:
        labels = None
        if self.nsp_weight > 0:
            batch, labels = self.nsp_pairs(batch, gen)
        c = self.corrupt(batch, vocab_size(model), gen)
        if labels is None:
            logits = model(c.inputs, mask="bidirectional")  # (B, T, V)
            return F.cross_entropy(logits[c.chosen], batch[c.chosen])
        h = model.hidden(c.inputs, mask="bidirectional")  # (B, T, C)
        logits = model.lm_head(h[c.chosen])  # (N, V)
        nsp = model.nsp_logits(h)  # (B, 2)
        self.last_nsp_accuracy = float((nsp.argmax(-1) == labels).float().mean())
        return (F.cross_entropy(logits, batch[c.chosen])
                + self.nsp_weight * F.cross_entropy(nsp, labels))


OBJECTIVES: dict[str, type[Objective]] = {"causal": CausalLM, "prefix": PrefixLM,
                                           "masked": MaskedLM, "encdec": Denoising}


def make_objective(name: str, **kwargs: Any) -> Objective:
    """An objective by name ('causal' | 'prefix' | 'masked' | 'encdec', `OBJECTIVES`).

    'encdec' is denoising for the encoder-decoder (`denoising.py`).
    """
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name](**kwargs)
