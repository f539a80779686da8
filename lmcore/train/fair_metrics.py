"""Fair held-out numbers for causal, prefix and masked models of one comparison.

Causal and prefix models are scored on the *same* suffix positions with the *same* context
(everything before the target); the causal model also on full sequences; the masked model by
pseudo-log-likelihood (Salazar et al. 2020): mask each position once and score it given all
the others. PLL conditions on both sides of a token, so it is not a likelihood of the text and
its "pseudo-perplexity" is not comparable with perplexity; it is always labelled "pseudo".
Everything is token-weighted (total nats / total tokens) and drawn with fixed seeds, in bits
per token and in bits per character of exactly the scored tokens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from lmcore.data.tokenizers import MASK_ID, N_SPECIAL
from lmcore.models.eval_mode import eval_mode
from lmcore.train.objectives import (
    LN2,
    MaskedLM,
    PrefixLM,
    nsp_segments,
    suffix_positions,
    vocab_size,
    wrap_pair,
)

if TYPE_CHECKING:
    from lmcore.data.tokenizers import Tokenizer
    from lmcore.train.data import TokenData

PLL_NOTE = ("Pseudo-log-likelihood scores each token given all the others (both sides). Those "
            "conditionals do not multiply out to a probability of the text (no chain rule "
            "links them, and their product is not a distribution over texts), so "
            "pseudo-perplexity is not a perplexity. It is usually far lower than a left-to-right "
            "model's, because each token sees both sides, and it compares only with other "
            "masked models.")

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

    model: str  # 'causal' | 'prefix' | 'masked' | 'encdec'
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


def model_device(model: torch.nn.Module) -> torch.device:
    """The device a model's parameters live on."""
    return next(model.parameters()).device


@torch.no_grad()
def model_logits(model: torch.nn.Module, x: torch.Tensor, **kw: Any) -> torch.Tensor:
    """float32 logits on the CPU of ids `x` run on the model's own device, without grad."""
    return model(x.to(model_device(model)), **kw).float().cpu()


def eval_prefix_lengths(n: int, T: int, seed: int = 0) -> torch.Tensor:
    """(n,) prefix lengths for held-out windows, fixed by `seed` (the same for every model)."""
    return PrefixLM().draw_prefix(n, T, torch.Generator().manual_seed(seed))


def suffix_nats(model: torch.nn.Module, windows: torch.Tensor, prefix_len: torch.Tensor,
                mask: str, batch_size: int = 32, *, stop: threading.Event | None = None,
                progress: Progress | None = None) -> tuple[float, int]:
    """Total nats and count of the suffix targets (token i+1 >= P) of windows (N, T+1).

    With mask='causal' the model reads left to right; with 'prefix' the first P inputs attend
    bidirectionally. Either way each target is conditioned on exactly the tokens before it.
    A set `stop` raises ScoringStopped before the next batch.
    """
    total, count = 0.0, 0
    with eval_mode(model):
        for i in range(0, len(windows), batch_size):
            _check_stop(stop)
            w, plen = windows[i:i + batch_size], prefix_len[i:i + batch_size]
            x, y = w[:, :-1], w[:, 1:]  # (b, T), (b, T)
            kw = {"mask": mask, "prefix_len": plen} if mask == "prefix" else {"mask": mask}
            lp = torch.log_softmax(model_logits(model, x, **kw).double(), -1)  # (b, T, V)
            keep = suffix_positions(plen, x.shape[1])  # (b, T)
            total -= float(lp.gather(-1, y[..., None])[..., 0][keep].sum())
            count += int(keep.sum())
            if progress is not None:
                progress(x.numel())
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
    total, count = 0.0, 0
    with eval_mode(model):
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
            logits = model_logits(model, rows, mask="bidirectional")  # (b, T, V)
            lp = torch.log_softmax(logits[torch.arange(b), p].double(), -1)  # (b, V)
            total -= float(lp.gather(-1, target[:, None]).sum())
            count += b
            if progress is not None:
                progress(rows.numel())
    return total, count


def masked_accuracy(model: torch.nn.Module, windows: torch.Tensor, objective: MaskedLM,
                    seed: int = 0, batch_size: int = 32, *, stop: threading.Event | None = None,
                    progress: Progress | None = None) -> tuple[float, int, int]:
    """(nats, correct, chosen) of BERT-corrupted windows (N, T) at the training rate, seeded."""
    gen = torch.Generator().manual_seed(seed)
    nats, correct, chosen = 0.0, 0, 0
    with eval_mode(model):
        for i in range(0, len(windows), batch_size):
            _check_stop(stop)
            w = windows[i:i + batch_size]
            c = objective.corrupt(w, vocab_size(model), gen)
            logits = model_logits(model, c.inputs, mask="bidirectional")[c.chosen]  # (n, V)
            y = w[c.chosen]
            nats += float(F.cross_entropy(logits.double(), y, reduction="sum"))
            correct += int((logits.argmax(-1) == y).sum())
            chosen += int(c.chosen.sum())
            if progress is not None:
                progress(w.numel())
    return nats, correct, chosen


@torch.no_grad()
def nsp_accuracy(model: torch.nn.Module, windows: torch.Tensor, seed: int = 0,
                 batch_size: int = 32, *, stop: threading.Event | None = None,
                 progress: Progress | None = None) -> tuple[float, int, int]:
    """(nats, correct, pairs) of the next-sentence head on held-out windows (N, T), seeded.

    The windows are shuffled with `seed` and paired as in training (`MaskedLM.nsp_pairs`):
    half the B segments continue their A, the others come from another window.
    """
    gen = torch.Generator().manual_seed(seed)
    windows = windows[torch.randperm(len(windows), generator=gen)]
    obj = MaskedLM(nsp_weight=1.0)
    nats, correct, pairs = 0.0, 0, 0
    with eval_mode(model):
        for i in range(0, len(windows), batch_size):
            _check_stop(stop)
            x, labels = obj.nsp_pairs(windows[i:i + batch_size], gen)  # (b, T), (b,)
            h = model.hidden(x.to(model_device(model)), mask="bidirectional")  # (b, T, C)
            logits = model.nsp_logits(h).double().cpu()  # (b, 2)
            nats += float(F.cross_entropy(logits, labels, reduction="sum"))
            correct += int((logits.argmax(-1) == labels).sum())
            pairs += len(labels)
            if progress is not None:
                progress(x.numel())
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
class EvalSet:
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
            n += per * (("causal" in names) * 2 + ("prefix" in names) + ("encdec" in names) * 6)
        if self.masked is not None and "masked" in names:
            x = self.masked.inputs
            scored = x.numel() if self.masked.score is None else int(self.masked.score.sum())
            n += scored * x.shape[1] + x.numel()  # PLL (one copy per token) + masked tokens
        if self.nsp is not None and "masked" in names:
            n += self.nsp.numel()  # next-sentence pairs
        return n


def eval_set(models: dict[str, torch.nn.Module], data: TokenData, context: int,
              max_tokens: int, seed: int, split: str) -> EvalSet:
    ev = EvalSet()
    if "causal" in models or "prefix" in models or "encdec" in models:
        # windows sharing one token at each seam: every token after the first is a target once
        ev.lr = data.eval_windows(context + 1, max_tokens=max_tokens, split=split)  # (N, C + 1)
        ev.plen = eval_prefix_lengths(len(ev.lr), context, seed)
    if "masked" in models:
        nsp = uses_nsp(models["masked"])
        ev.masked = masked_inputs(data.ids(split), context, max_tokens, nsp)
        if nsp:
            ev.nsp = disjoint_windows(data.ids(split), context, max_tokens)  # (N, C)
    return ev


class Meter:
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


def score_models(models: dict[str, torch.nn.Module], ev: EvalSet, tokenizer: Tokenizer, seed: int,
           rate: float, meter: Meter) -> list[Metric]:
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
    if ev.lr is not None and "encdec" in models:
        rows += score_encoder_decoder(models["encdec"], ev, tokenizer, seed, rate, meter)
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


def encdec_suffix_nats(model: torch.nn.Module, windows: torch.Tensor, prefix_len: torch.Tensor,
                      batch_size: int = 32, *, stop: threading.Event | None = None,
                      progress: Progress | None = None) -> tuple[float, int]:
    """Total nats and count of targets w[max(P, 1):] of windows (N, C + 1) under an
    encoder-decoder: the encoder reads w[:P] + [MASK], the decoder [BOS] + w[:C] (so each
    target is conditioned on exactly the tokens before it, as for the causal and prefix
    models on the same positions). P = 0 scores the full sequence from the second token."""
    from lmcore.train.denoising import decoder_input, pack, prefix_source

    total, count = 0.0, 0
    with eval_mode(model), torch.no_grad():
        dev = model_device(model)
        for i in range(0, len(windows), batch_size):
            _check_stop(stop)
            w, plen = windows[i:i + batch_size], prefix_len[i:i + batch_size]
            src, src_mask = pack([prefix_source(r, int(p)) for r, p in zip(w, plen,
                                                                           strict=True)], dev)
            logits = model(src, decoder_input(w).to(dev), src_mask).float().cpu()
            lp = torch.log_softmax(logits.double(), -1)  # (b, C + 1, V)
            j = torch.arange(w.shape[1])
            keep = j[None, :] >= plen.clamp_min(1)[:, None]  # (b, C + 1)
            total -= float(lp.gather(-1, w[..., None])[..., 0][keep].sum())
            count += int(keep.sum())
            if progress is not None:
                progress(2 * w.numel())
    return total, count


def encdec_infill(model: torch.nn.Module, windows: torch.Tensor, rate: float, seed: int = 0,
                  batch_size: int = 32, *, stop: threading.Event | None = None,
                  progress: Progress | None = None) -> tuple[float, int, int]:
    """(nats, correct, hidden) on the tokens of seeded infilled spans (no tail masking)."""
    from lmcore.train.denoising import Denoising, decoder_input

    obj = Denoising(rate=rate, sequential=0.0)
    gen = torch.Generator().manual_seed(seed)
    nats, correct, hidden = 0.0, 0, 0
    with eval_mode(model), torch.no_grad():
        dev = model_device(model)
        for i in range(0, len(windows), batch_size):
            _check_stop(stop)
            w = windows[i:i + batch_size]
            n = obj.corrupt(w, gen)
            logits = model(n.src.to(dev), decoder_input(w).to(dev),
                           n.src_mask.to(dev)).float().cpu()[n.hidden]  # (h, V)
            y = w[n.hidden]
            nats += float(F.cross_entropy(logits.double(), y, reduction="sum"))
            correct += int((logits.argmax(-1) == y).sum())
            hidden += int(n.hidden.sum())
            if progress is not None:
                progress(2 * w.numel())
    return nats, correct, hidden


def score_encoder_decoder(model: torch.nn.Module, ev: EvalSet, tokenizer: Tokenizer, seed: int,
                          rate: float, meter: Meter) -> list[Metric]:
    """The encoder-decoder's rows: the same suffix positions and full sequences as the causal
    and prefix models (true likelihoods), and infilled spans (its training task)."""
    win, plen, stop = ev.lr, ev.plen, meter.stop
    rows = []
    tick = meter.stage("encdec: suffix (same positions)")
    nats, n = encdec_suffix_nats(model, win, plen, stop=stop, progress=tick)
    rows.append(Metric("encdec", "suffix (same positions)", nats, n,
                       span_chars(tokenizer, win, plen.clamp_min(1))))
    tick = meter.stage("encdec: full sequence")
    nats, n = encdec_suffix_nats(model, win, torch.zeros(len(win), dtype=torch.long),
                                 stop=stop, progress=tick)
    rows.append(Metric("encdec", "full sequence", nats, n,
                       span_chars(tokenizer, win, torch.ones(len(win), dtype=torch.long))))
    tick = meter.stage("encdec: infilled spans")
    nats, correct, hidden = encdec_infill(model, win, rate, seed, stop=stop, progress=tick)
    rows.append(Metric("encdec", f"infilled spans at {rate:.0%}", nats, hidden, None,
                       kind="masked", accuracy=correct / hidden if hidden else float("nan")))
    return rows


def fair_metrics(models: dict[str, torch.nn.Module], data: TokenData, context: int, *,
                 tokenizer: Tokenizer, max_tokens: int = 2048, seed: int = 0,
                 rate: float = 0.15, split: str = "valid", stop: threading.Event | None = None,
                 callback: Callable[[Scoring], None] | None = None) -> list[Metric]:
    """The comparison table: every model keyed 'causal' / 'prefix' / 'masked' / 'encdec' given.

    Causal and prefix are scored on the same held-out windows, the same suffix positions and
    prefix lengths (seeded); the causal model also on full windows; the masked model by PLL,
    masked-token accuracy at `rate` and, when it has a next-sentence head, held-out NSP
    accuracy (its inputs wrapped as [CLS] A [SEP] B [SEP], as in training). `tokenizer` decodes
    the scored tokens to count their characters. `callback` gets `Scoring` progress; a set
    `stop` raises ScoringStopped.
    """
    ev = eval_set(models, data, context, max_tokens, seed, split)
    return score_models(models, ev, tokenizer, seed, rate, Meter(ev.work(list(models)), callback,
                                                            stop))
