"""Causal, prefix and masked LM over one backbone: they differ only in mask and loss positions.

UniLM's view: the same Transformer becomes a decoder (causal mask, loss on every next token),
a prefix LM (bidirectional inside a per-sample prefix, causal after it, loss on the suffix
only) or a BERT-style encoder (no mask, 15% of positions corrupted 80/10/10, loss only there).
Every objective has `loss(model, batch, gen)` on a (B, W) window of token ids, the trainer's
only call, and `window(context)` (how many ids one sample needs).

Fair held-out numbers (`fair_metrics`): causal and prefix models are scored on the *same*
suffix positions with the *same* context (everything before the target); the causal model also
on full sequences; the masked model by pseudo-log-likelihood (Salazar et al. 2020): mask each
position once and score it given all the others. PLL conditions on both sides of a token, so it
is not a likelihood of the text and its "pseudo-perplexity" is not comparable with perplexity;
it is always labelled "pseudo". Everything is token-weighted (total nats / total tokens) and
drawn with fixed seeds, in bits per token and in bits per character of exactly the scored tokens.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from lmcore.data.tokenizers import SPECIAL_TOKENS

if TYPE_CHECKING:
    from lmcore.data.tokenizers import Tokenizer
    from lmcore.models.transformer import Transformer, TransformerConfig
    from lmcore.train.data import TokenData
    from lmcore.train.trainer import TrainConfig, TrainResult

N_SPECIAL = len(SPECIAL_TOKENS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID, MASK_ID, CLS_ID, SEP_ID = range(N_SPECIAL)
LN2 = math.log(2.0)
PLL_NOTE = ("Pseudo-log-likelihood scores each token given all the others (both sides). Those "
            "conditionals do not multiply out to a probability of the text (no chain rule "
            "links them, and their product is not a distribution over texts), so "
            "pseudo-perplexity is not a perplexity. It is usually far lower than a left-to-right "
            "model's, because each token sees both sides, and it compares only with other "
            "masked models.")


def _vocab(model: torch.nn.Module) -> int:
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
        c = self.corrupt(batch, _vocab(model), gen)
        if labels is None:
            logits = model(c.inputs, mask="bidirectional")  # (B, T, V)
            return F.cross_entropy(logits[c.chosen], batch[c.chosen])
        h = model.hidden(c.inputs, mask="bidirectional")  # (B, T, C)
        logits = model.lm_head(h[c.chosen])  # (N, V)
        nsp = model.nsp_logits(h)  # (B, 2)
        self.last_nsp_accuracy = float((nsp.argmax(-1) == labels).float().mean())
        return (F.cross_entropy(logits, batch[c.chosen])
                + self.nsp_weight * F.cross_entropy(nsp, labels))


OBJECTIVES = {"causal": CausalLM, "prefix": PrefixLM, "masked": MaskedLM}


def make_objective(name: str, **kwargs: Any) -> CausalLM | PrefixLM | MaskedLM:
    """An objective by name ('causal' | 'prefix' | 'masked')."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name](**kwargs)


# --- fair held-out metrics ---------------------------------------------------------------

KINDS = ("likelihood", "pseudo", "masked", "nsp")
COLUMNS = ("model", "scored", "tokens", "characters", "bits/token", "bits/char",
           "per-token perplexity", "pseudo bits/token", "pseudo bits/char", "pseudo-perplexity",
           "bits/masked token", "masked-token perplexity", "accuracy")


@dataclass(frozen=True)
class Metric:
    """One held-out number: total nats over `tokens` scored units (token-weighted).

    `kind` decides which columns it fills: 'likelihood' (a true left-to-right likelihood:
    bits/token, bits/char, perplexity), 'pseudo' (PLL: the same units, labelled pseudo),
    'masked' (cross-entropy on BERT-corrupted positions only: no bits/char, since the scored
    tokens are a random subset, not a text), 'nsp' (next-sentence pairs: accuracy only).
    `chars` counts the characters of exactly the scored tokens (None where not meaningful).
    """

    model: str  # 'causal' | 'prefix' | 'masked'
    metric: str  # what was scored, e.g. 'suffix (same positions)'
    nats: float
    tokens: int  # scored tokens (held-out pairs for 'nsp')
    chars: int | None = None
    kind: str = "likelihood"
    accuracy: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"metric kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def pseudo(self) -> bool:
        return self.kind == "pseudo"

    @property
    def bits_per_token(self) -> float:
        return self.nats / LN2 / self.tokens if self.tokens else float("nan")

    @property
    def perplexity(self) -> float:
        """2 ** bits per scored unit (pseudo-perplexity for PLL, per masked token for MLM)."""
        return 2.0 ** self.bits_per_token if self.tokens else float("nan")

    @property
    def bits_per_char(self) -> float:
        return self.nats / LN2 / self.chars if self.chars else float("nan")

    def as_row(self) -> dict[str, Any]:
        """One table row over COLUMNS; cells that do not apply to this kind are None."""
        row: dict[str, Any] = dict.fromkeys(COLUMNS)
        row.update(model=self.model, scored=self.metric + (" [pseudo]" if self.pseudo else ""),
                   accuracy=self.accuracy)
        if self.kind == "nsp":
            return row
        row.update(tokens=self.tokens, characters=self.chars)
        if self.kind == "likelihood":
            row.update({"bits/token": self.bits_per_token, "bits/char": self.bits_per_char,
                        "per-token perplexity": self.perplexity})
        elif self.kind == "pseudo":
            row.update({"pseudo bits/token": self.bits_per_token,
                        "pseudo bits/char": self.bits_per_char,
                        "pseudo-perplexity": self.perplexity})
        else:
            row.update({"bits/masked token": self.bits_per_token,
                        "masked-token perplexity": self.perplexity})
        return row


def table_rows(metrics: list[Metric]) -> list[dict[str, Any]]:
    """`as_row()` of each metric, leaving out the columns that no row fills."""
    rows = [m.as_row() for m in metrics]
    keep = [c for c in COLUMNS if any(r[c] is not None for r in rows)]
    return [{c: r[c] for c in keep} for r in rows]


@dataclass(frozen=True)
class Scoring:
    """Progress of held-out scoring: `done` of `total` token positions run, now in `stage`."""

    done: int
    total: int
    stage: str


class ScoringStopped(Exception):
    """The stop event was set during scoring: the partial numbers are thrown away."""


Progress = Callable[[int], None]  # called with the token positions just run


def _check_stop(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise ScoringStopped("scoring stopped")


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def _logits(model: torch.nn.Module, x: torch.Tensor, **kw: Any) -> torch.Tensor:
    return model(x.to(_device(model)), **kw).float().cpu()


def eval_prefix_lengths(n: int, T: int, seed: int = 0) -> torch.Tensor:
    """(n,) prefix lengths for held-out windows, fixed by `seed` (the same for every model)."""
    return PrefixLM().draw_prefix(n, T, torch.Generator().manual_seed(seed))


def _eval_mode(model: torch.nn.Module) -> bool:
    was = model.training
    model.eval()
    return was


def suffix_nats(model: torch.nn.Module, windows: torch.Tensor, prefix_len: torch.Tensor,
                mask: str, batch_size: int = 32, *, stop: threading.Event | None = None,
                progress: Progress | None = None) -> tuple[float, int]:
    """Total nats and count of the suffix targets (token i+1 >= P) of windows (N, T+1).

    With mask='causal' the model reads left to right; with 'prefix' the first P inputs attend
    bidirectionally. Either way each target is conditioned on exactly the tokens before it.
    A set `stop` raises ScoringStopped before the next batch.
    """
    was = _eval_mode(model)
    total, count = 0.0, 0
    try:
        for i in range(0, len(windows), batch_size):
            _check_stop(stop)
            w, plen = windows[i:i + batch_size], prefix_len[i:i + batch_size]
            x, y = w[:, :-1], w[:, 1:]  # (b, T), (b, T)
            kw = {"mask": mask, "prefix_len": plen} if mask == "prefix" else {"mask": mask}
            lp = torch.log_softmax(_logits(model, x, **kw).double(), -1)  # (b, T, V)
            keep = suffix_positions(plen, x.shape[1])  # (b, T)
            total -= float(lp.gather(-1, y[..., None])[..., 0][keep].sum())
            count += int(keep.sum())
            if progress is not None:
                progress(x.numel())
    finally:
        model.train(was)
    return total, count


def causal_nats(model: torch.nn.Module, windows: torch.Tensor, batch_size: int = 32, *,
                stop: threading.Event | None = None,
                progress: Progress | None = None) -> tuple[float, int]:
    """Total nats and count of every target of windows (N, T+1) read left to right."""
    zero = torch.zeros(len(windows), dtype=torch.long)  # prefix 0: every position scored
    return suffix_nats(model, windows, zero, "causal", batch_size, stop=stop, progress=progress)


def pseudo_log_likelihood(model: torch.nn.Module, windows: torch.Tensor,
                          mask_id: int = MASK_ID, batch_size: int = 64, *,
                          score: torch.Tensor | None = None,
                          stop: threading.Event | None = None,
                          progress: Progress | None = None) -> tuple[float, int]:
    """(-PLL in nats, tokens) of windows (N, T): each position masked once, scored given the rest.

    Batched: copy (n, j) of window n has position j replaced by [MASK]; the log-probability of
    the original token at j in that copy is its PLL term. `score` (N, T) bool limits which
    positions are scored (default all; [CLS]/[SEP] of a wrapped pair are left out).
    """
    was = _eval_mode(model)
    total, count = 0.0, 0
    try:
        N, T = windows.shape
        where = (torch.ones(N, T, dtype=torch.bool) if score is None else score).nonzero()
        n_idx, pos = where[:, 0], where[:, 1]  # (M,), (M,): window and position of each copy
        for i in range(0, len(pos), batch_size):
            _check_stop(stop)
            rows = windows[n_idx[i:i + batch_size]].clone()  # (b, T)
            p = pos[i:i + batch_size]
            b = len(p)
            target = rows[torch.arange(b), p]  # (b,)
            rows[torch.arange(b), p] = mask_id
            logits = _logits(model, rows, mask="bidirectional")  # (b, T, V)
            lp = torch.log_softmax(logits[torch.arange(b), p].double(), -1)  # (b, V)
            total -= float(lp.gather(-1, target[:, None]).sum())
            count += b
            if progress is not None:
                progress(rows.numel())
    finally:
        model.train(was)
    return total, count


def masked_accuracy(model: torch.nn.Module, windows: torch.Tensor, objective: MaskedLM,
                    seed: int = 0, batch_size: int = 32, *, stop: threading.Event | None = None,
                    progress: Progress | None = None) -> tuple[float, int, int]:
    """(nats, correct, chosen) of BERT-corrupted windows (N, T) at the training rate, seeded."""
    was = _eval_mode(model)
    gen = torch.Generator().manual_seed(seed)
    nats, correct, chosen = 0.0, 0, 0
    try:
        for i in range(0, len(windows), batch_size):
            _check_stop(stop)
            w = windows[i:i + batch_size]
            c = objective.corrupt(w, _vocab(model), gen)
            logits = _logits(model, c.inputs, mask="bidirectional")[c.chosen]  # (n, V)
            y = w[c.chosen]
            nats += float(F.cross_entropy(logits.double(), y, reduction="sum"))
            correct += int((logits.argmax(-1) == y).sum())
            chosen += int(c.chosen.sum())
            if progress is not None:
                progress(w.numel())
    finally:
        model.train(was)
    return nats, correct, chosen


@torch.no_grad()
def nsp_accuracy(model: torch.nn.Module, windows: torch.Tensor, seed: int = 0,
                 batch_size: int = 32, *, stop: threading.Event | None = None,
                 progress: Progress | None = None) -> tuple[float, int, int]:
    """(nats, correct, pairs) of the next-sentence head on held-out windows (N, T), seeded.

    The windows are shuffled with `seed` and paired as in training (`MaskedLM.nsp_pairs`):
    half the B segments continue their A, the others come from another window.
    """
    was = _eval_mode(model)
    gen = torch.Generator().manual_seed(seed)
    windows = windows[torch.randperm(len(windows), generator=gen)]
    obj = MaskedLM(nsp_weight=1.0)
    nats, correct, pairs = 0.0, 0, 0
    try:
        for i in range(0, len(windows), batch_size):
            _check_stop(stop)
            x, labels = obj.nsp_pairs(windows[i:i + batch_size], gen)  # (b, T), (b,)
            h = model.hidden(x.to(_device(model)), mask="bidirectional")  # (b, T, C)
            logits = model.nsp_logits(h).double().cpu()  # (b, 2)
            nats += float(F.cross_entropy(logits, labels, reduction="sum"))
            correct += int((logits.argmax(-1) == labels).sum())
            pairs += len(labels)
            if progress is not None:
                progress(x.numel())
    finally:
        model.train(was)
    return nats, correct, pairs


def disjoint_windows(ids: torch.Tensor, T: int, max_tokens: int | None = None) -> torch.Tensor:
    """(N, T) non-overlapping windows from the start of `ids` (each token in exactly one)."""
    n = len(ids) if max_tokens is None else min(len(ids), max_tokens)
    N = n // T
    if N == 0:
        raise ValueError(f"the held-out text has only {len(ids):,} tokens, fewer than one "
                         f"window of {T}: use a longer text or a smaller context")
    return ids[:N * T].view(N, T)


def uses_nsp(model: torch.nn.Module) -> bool:
    """True for a model with a next-sentence head: it was trained on [CLS] A [SEP] B [SEP]."""
    return getattr(model, "nsp", None) is not None


@dataclass
class MaskedInputs:
    """Held-out inputs of a masked model: plain windows, or [CLS] A [SEP] B [SEP] pairs."""

    inputs: torch.Tensor  # (N, T) what the model reads
    content: torch.Tensor  # (N, T) or (N, T - 3): the text tokens only, in order
    score: torch.Tensor | None  # (N, T) bool: text positions of `inputs`; None = all


def masked_inputs(ids: torch.Tensor, context: int, max_tokens: int | None,
                  nsp: bool) -> MaskedInputs:
    """Disjoint held-out windows shaped the way a masked model was trained on them.

    A model trained with next-sentence prediction always saw [CLS] A [SEP] B [SEP] (B the
    true continuation here), so it is scored on the same layout, the specials never scored.
    """
    if not nsp:
        win = disjoint_windows(ids, context, max_tokens)  # (N, T)
        return MaskedInputs(win, win, None)
    la, _ = nsp_segments(context)
    content = disjoint_windows(ids, context - 3, max_tokens)  # (N, T - 3)
    inputs = wrap_pair(content[:, :la], content[:, la:])  # (N, T)
    score = inputs >= N_SPECIAL
    score[:, 0] = score[:, la + 1] = score[:, -1] = False  # [CLS], [SEP], [SEP]
    return MaskedInputs(inputs, content, score)


def span_chars(tokenizer: Tokenizer, windows: torch.Tensor, start: torch.Tensor | None = None,
               end: torch.Tensor | None = None) -> int:
    """Characters of the tokens windows[n, start[n]:end[n]] of every window, decoded per span.

    Each span is a contiguous piece of text, so for tokenizers with an exact round trip (char,
    byte, BPE) this is exactly its length, also when one character spans several tokens (per
    token decoding would count a split UTF-8 character twice); only a span cut inside such a
    character counts its stray bytes as one character each.
    """
    N, T = windows.shape
    lo = torch.zeros(N, dtype=torch.long) if start is None else start
    hi = torch.full((N,), T, dtype=torch.long) if end is None else end
    rows = windows.tolist()
    return sum(len(tokenizer.decode(r[int(a):int(b)]))
               for r, a, b in zip(rows, lo.tolist(), hi.tolist(), strict=True))


@dataclass
class _EvalSet:
    """The held-out windows every model of one comparison is scored on."""

    lr: torch.Tensor | None = None  # (N, C + 1) left-to-right windows sharing seam tokens
    plen: torch.Tensor | None = None  # (N,) prefix lengths (seeded)
    masked: MaskedInputs | None = None
    nsp: torch.Tensor | None = None  # (N, C) windows cut into next-sentence pairs

    def work(self, names: list[str]) -> int:
        """Token positions the scoring of `names` runs through the model."""
        n = 0
        if self.lr is not None:
            per = self.lr[:, :-1].numel()
            n += per * (("causal" in names) * 2 + ("prefix" in names))
        if self.masked is not None and "masked" in names:
            x = self.masked.inputs
            scored = x.numel() if self.masked.score is None else int(self.masked.score.sum())
            n += scored * x.shape[1] + x.numel()  # PLL (one copy per token) + masked tokens
        if self.nsp is not None and "masked" in names:
            n += self.nsp.numel()  # next-sentence pairs
        return n


def _eval_set(models: dict[str, torch.nn.Module], data: TokenData, context: int,
              max_tokens: int, seed: int, split: str) -> _EvalSet:
    ev = _EvalSet()
    if "causal" in models or "prefix" in models:
        # windows sharing one token at each seam: every token after the first is a target once
        ev.lr = data.eval_windows(context + 1, max_tokens=max_tokens, split=split)  # (N, C + 1)
        ev.plen = eval_prefix_lengths(len(ev.lr), context, seed)
    if "masked" in models:
        nsp = uses_nsp(models["masked"])
        ev.masked = masked_inputs(data.ids(split), context, max_tokens, nsp)
        if nsp:
            ev.nsp = disjoint_windows(data.ids(split), context, max_tokens)  # (N, C)
    return ev


class _Meter:
    """Counts scored positions against a total, reports `Scoring` events, honours `stop`."""

    def __init__(self, total: int, callback: Callable[[Any], None] | None,
                 stop: threading.Event | None):
        self.total, self.done = max(int(total), 1), 0
        self.callback, self.stop = callback, stop

    def stage(self, name: str) -> Progress:
        _check_stop(self.stop)
        if self.callback is not None:
            self.callback(Scoring(self.done, self.total, name))

        def tick(n: int) -> None:
            self.done = min(self.done + int(n), self.total)
            if self.callback is not None:
                self.callback(Scoring(self.done, self.total, name))

        return tick


def _score(models: dict[str, torch.nn.Module], ev: _EvalSet, tokenizer: Tokenizer, seed: int,
           rate: float, meter: _Meter) -> list[Metric]:
    rows: list[Metric] = []
    stop = meter.stop
    if ev.lr is not None:
        win, plen = ev.lr, ev.plen
        suffix_chars = span_chars(tokenizer, win, plen.clamp_min(1))  # targets w[P:]
        for name in ("causal", "prefix"):
            if name in models:
                tick = meter.stage(f"{name}: suffix (same positions)")
                nats, n = suffix_nats(models[name], win, plen, name, stop=stop, progress=tick)
                rows.append(Metric(name, "suffix (same positions)", nats, n, suffix_chars))
        if "causal" in models:
            tick = meter.stage("causal: full sequence")
            nats, n = causal_nats(models["causal"], win, stop=stop, progress=tick)
            full_chars = span_chars(tokenizer, win, torch.ones(len(win), dtype=torch.long))
            rows.append(Metric("causal", "full sequence", nats, n, full_chars))
    if ev.masked is not None:
        m, mi = models["masked"], ev.masked
        tick = meter.stage("masked: pseudo-log-likelihood")
        nats, n = pseudo_log_likelihood(m, mi.inputs, score=mi.score, stop=stop, progress=tick)
        rows.append(Metric("masked", "pseudo-log-likelihood", nats, n,
                           span_chars(tokenizer, mi.content), kind="pseudo"))
        tick = meter.stage("masked: masked tokens")
        nats, correct, chosen = masked_accuracy(m, mi.inputs, MaskedLM(rate=rate), seed,
                                                stop=stop, progress=tick)
        rows.append(Metric("masked", f"masked tokens at {rate:.0%}", nats, chosen, None,
                           kind="masked", accuracy=correct / chosen if chosen else float("nan")))
        if ev.nsp is not None:
            tick = meter.stage("masked: next-sentence prediction")
            nats, correct, pairs = nsp_accuracy(m, ev.nsp, seed, stop=stop, progress=tick)
            rows.append(Metric("masked", f"next-sentence prediction ({pairs} held-out pairs)",
                               nats, pairs, None, kind="nsp",
                               accuracy=correct / pairs if pairs else float("nan")))
    return rows


def fair_metrics(models: dict[str, torch.nn.Module], data: TokenData, context: int, *,
                 tokenizer: Tokenizer, max_tokens: int = 2048, seed: int = 0,
                 rate: float = 0.15, split: str = "valid", stop: threading.Event | None = None,
                 callback: Callable[[Scoring], None] | None = None) -> list[Metric]:
    """The comparison table: every model keyed 'causal' / 'prefix' / 'masked' that is given.

    Causal and prefix are scored on the same held-out windows, the same suffix positions and
    prefix lengths (seeded); the causal model also on full windows; the masked model by PLL,
    masked-token accuracy at `rate` and, when it has a next-sentence head, held-out NSP
    accuracy (its inputs wrapped as [CLS] A [SEP] B [SEP], as in training). `tokenizer` decodes
    the scored tokens to count their characters. `callback` gets `Scoring` progress; a set
    `stop` raises ScoringStopped.
    """
    ev = _eval_set(models, data, context, max_tokens, seed, split)
    return _score(models, ev, tokenizer, seed, rate, _Meter(ev.work(list(models)), callback,
                                                            stop))


# --- demos -------------------------------------------------------------------------------

def _printable(s: str) -> bool:
    return bool(s) and "\ufffd" not in s and all(ch.isprintable() or ch in " \n\t" for ch in s)


def fillable_ids(tokenizer: Tokenizer, seen: torch.Tensor | None = None) -> torch.Tensor:
    """Bool (V,): ids a blank may be filled with: ordinary tokens that decode to printable text.

    Byte-fallback and byte-level pieces that are not a whole character decode to "\ufffd" and
    are left out; with `seen` (training ids) also every token never seen in training.
    """
    V = tokenizer.vocab_size
    ok = torch.tensor([i >= N_SPECIAL and _printable(tokenizer.decode([i])) for i in range(V)])
    if seen is not None:
        ok &= torch.bincount(seen.flatten().long(), minlength=V)[:V] > 0
    return ok


@torch.no_grad()
def fill_blanks(model: torch.nn.Module, tokenizer: Tokenizer, text: str, kind: str,
                blank: str = "_",
                allowed: torch.Tensor | None = None) -> tuple[str, list[tuple[str, float]]]:
    """Fill each `blank` (one token each) with the model's most likely token; greedy.

    masked: all blanks become [MASK] and are filled most-confident first, using both sides
    (a model with a next-sentence head reads the sentence as [CLS] A [SEP] B [SEP], as it was
    trained). prefix: left to right, the text before a blank read bidirectionally as the
    prefix. causal: left to right from the text before each blank only. Only `allowed` ids
    (default `fillable_ids(tokenizer)`) can fill a blank; probabilities are renormalised over
    them. Returns the filled text and (token, probability) for each blank in text order.
    """
    if blank not in text:
        raise ValueError(f"type a sentence with at least one blank written as {blank!r}")
    allowed = fillable_ids(tokenizer) if allowed is None else allowed.bool()
    V = _vocab(model)
    if len(allowed) < V:
        allowed = torch.cat([allowed, torch.zeros(V - len(allowed), dtype=torch.bool)])
    allowed = allowed[:V]
    if not bool(allowed.any()):
        raise ValueError("no token of this vocabulary decodes to printable text to fill with")
    pieces = text.split(blank)
    ids: list[int] = [BOS_ID] if kind != "masked" else []
    holes: list[int] = []
    for i, piece in enumerate(pieces):
        ids += tokenizer.encode(piece)
        if i < len(pieces) - 1:
            holes.append(len(ids))
            ids.append(MASK_ID)
    text_pos = list(range(1 if kind != "masked" else 0, len(ids)))  # positions of the text
    if kind == "masked" and uses_nsp(model):  # [CLS] A [SEP] B [SEP]
        la = len(ids) // 2
        ids = [CLS_ID] + ids[:la] + [SEP_ID] + ids[la:] + [SEP_ID]
        shift = [j + 1 if j < la else j + 2 for j in range(len(ids) - 3)]
        holes = [shift[j] for j in holes]
        text_pos = shift
    C = model.config.context
    if len(ids) > C:
        raise ValueError(f"the sentence is {len(ids)} tokens, longer than the model's context "
                         f"of {C}: shorten it")
    was = _eval_mode(model)
    probs: dict[int, float] = {}
    try:
        x = torch.tensor([ids])
        todo = list(holes)
        while todo:
            if kind == "masked":
                p = torch.softmax(_logits(model, x, mask="bidirectional")[0], -1)  # (T, V)
                p[:, ~allowed] = 0  # fill with printable text, never a special token
                best = max(todo, key=lambda j: float(p[j].max()))
                tok = int(p[best].argmax())
                pos, prob = best, float(p[best, tok] / p[best].sum())
            else:
                pos = todo[0]
                ctx = x[:, :pos]  # everything before the blank
                kw = ({"mask": "prefix", "prefix_len": torch.tensor([pos])} if kind == "prefix"
                      else {"mask": "causal"})
                p = torch.softmax(_logits(model, ctx, **kw)[0, -1], -1)  # (V,)
                p[~allowed] = 0
                tok = int(p.argmax())
                prob = float(p[tok] / p.sum())
            x[0, pos] = tok
            probs[pos] = prob
            todo.remove(pos)
    finally:
        model.train(was)
    out = [int(x[0, j]) for j in text_pos]
    shown = tokenizer.token_strings([int(x[0, j]) for j in holes])
    return tokenizer.decode(out), [(s, probs[j]) for s, j in zip(shown, holes, strict=True)]


def make_blanks(text: str, n: int = 3, blank: str = "_", seed: int = 0) -> str:
    """`text` with `n` letters (chosen with `seed`, not the first) replaced by `blank`."""
    letters = [i for i, ch in enumerate(text) if ch.isalpha() and i > 0]
    if not letters:
        return text + blank
    g = torch.Generator().manual_seed(seed)
    picks = sorted(letters[int(j)] for j in torch.randperm(len(letters), generator=g)[:n])
    chars = list(text)
    for i in picks:
        chars[i] = blank
    return "".join(chars)


# --- one budget, three objectives --------------------------------------------------------

MODEL_MASKS = {"causal": "causal", "prefix": "prefix", "masked": "bidirectional"}
RANK_WINDOWS = 8  # held-out windows whose attention matrices are measured


def build_models(config: TransformerConfig, seed: int = 0,
                 nsp: bool = False) -> dict[str, Transformer]:
    """The three backbones from one `TransformerConfig`, identical initial weights (seeded).

    Only the mask differs (and, with `nsp`, the masked model's extra [CLS] head, which is
    created last so every shared weight still starts equal).
    """
    from lmcore.models.transformer import Transformer, TransformerConfig

    models = {}
    for name, mask in MODEL_MASKS.items():
        cfg = TransformerConfig(**{**config.to_dict(), "mask": mask,
                                   "nsp_head": nsp and name == "masked"})
        torch.manual_seed(seed)
        models[name] = Transformer(cfg)
    return models


@dataclass
class ObjectiveRun:
    """One trained objective with its fair held-out rows and attention effective ranks.

    `status` is 'stopped' when the stop event (a Stop button, a job's time limit) was set
    during training or scoring: then nothing is scored, `metrics` is empty and `ranks` None.
    """

    name: str
    model: Transformer
    result: TrainResult
    metrics: list[Metric]
    ranks: np.ndarray | None  # (L, H) mean effective rank per layer and head
    status: str = "done"


def _rank_inputs(name: str, data: TokenData, context: int,
                 nsp: bool) -> tuple[torch.Tensor, dict[str, Any]]:
    """Held-out windows (N, T) for the effective ranks, shaped as the model was trained."""
    if name == "masked":
        return masked_inputs(data.ids("valid"), context, RANK_WINDOWS * context, nsp).inputs, {}
    win = disjoint_windows(data.ids("valid"), context, RANK_WINDOWS * context)
    if name == "prefix":  # half the window as prefix: both attention patterns in one matrix
        return win, {"mask": "prefix", "prefix_len": torch.full((len(win),), context // 2)}
    return win, {}


def work_plan(name: str, data: TokenData, train_config: TrainConfig, context: int,
              nsp: bool = False, max_tokens: int | None = None) -> tuple[int, int]:
    """(training, scoring) work of `train_and_score` in token positions through the model.

    A training step costs about three forward passes (forward + backward) of batch × window
    tokens; each held-out evaluation of the trainer two forward passes of `eval_tokens`;
    scoring is counted exactly. The page turns the two into one progress bar with an ETA.
    """
    tc = train_config
    window = make_objective(name).window(context)
    n_evals = 1 + ((tc.steps - 1) // tc.eval_every if tc.eval_every else 0)
    train_work = 3 * tc.steps * tc.batch_size * window + n_evals * 2 * tc.eval_tokens
    ev = _EvalSet()
    max_tokens = tc.eval_tokens if max_tokens is None else max_tokens
    if name in ("causal", "prefix"):
        ev.lr = data.eval_windows(context + 1, max_tokens=max_tokens)
    else:
        ev.masked = masked_inputs(data.ids("valid"), context, max_tokens, nsp)
        if nsp:
            ev.nsp = disjoint_windows(data.ids("valid"), context, max_tokens)
    ranks = _rank_inputs(name, data, context, nsp)[0].numel()
    return train_work, ev.work([name]) + ranks


def train_and_score(name: str, model: Transformer, data: TokenData, train_config: TrainConfig,
                    *, tokenizer: Tokenizer, rate: float = 0.15, nsp: bool = False,
                    callback: Callable[[Any], None] | None = None,
                    stop: threading.Event | None = None) -> ObjectiveRun:
    """Train `model` with objective `name` on `data`, then score it fairly on held-out text.

    The held-out windows, prefix lengths and masking draws depend only on the seed in
    `train_config`, so three calls (one per objective) produce directly comparable rows.
    `callback` gets the trainer's events and then `Scoring` progress; once `stop` is set
    (before or during training or scoring) scoring is skipped and the run is 'stopped'.
    """
    from lmcore.train.effective_rank import attention_effective_ranks
    from lmcore.train.trainer import train

    kw = {"rate": rate, "nsp_weight": 1.0 if nsp else 0.0} if name == "masked" else {}
    result = train(model, make_objective(name, **kw), data, train_config, callback=callback,
                   stop=stop)
    if result.status == "failed":
        raise ValueError(f"{name} training failed: {result.error}")
    if result.status == "stopped" or (stop is not None and stop.is_set()):
        return ObjectiveRun(name, model, result, [], None, status="stopped")
    context = train_config.context or model.config.context
    ev = _eval_set({name: model}, data, context, train_config.eval_tokens, train_config.seed,
                   "valid")
    win, mask_kw = _rank_inputs(name, data, context, uses_nsp(model))
    meter = _Meter(ev.work([name]) + win.numel(), callback, stop)
    try:
        rows = _score({name: model}, ev, tokenizer, train_config.seed, rate, meter)
        tick = meter.stage(f"{name}: attention effective rank")
        ranks = attention_effective_ranks(model, win.to(_device(model)), **mask_kw)
        tick(win.numel())
    except ScoringStopped:
        return ObjectiveRun(name, model, result, [], None, status="stopped")
    return ObjectiveRun(name, model, result, rows, ranks)
