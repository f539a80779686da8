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
drawn with fixed seeds, in bits per token and bits per character.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from lmcore.data.tokenizers import SPECIAL_TOKENS

N_SPECIAL = len(SPECIAL_TOKENS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID, MASK_ID, CLS_ID, SEP_ID = range(N_SPECIAL)
LN2 = math.log(2.0)
PLL_NOTE = ("Pseudo-log-likelihood scores each token given all the others (both sides), so it "
            "is not the probability of the text and pseudo-perplexity is not a perplexity: it "
            "is always lower than a left-to-right model could reach and compares only with "
            "other masked models.")


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
        if T < 5:
            raise ValueError("next-sentence prediction needs a context of at least 5 tokens")
        la = (T - 3) // 2
        lb = T - 3 - la
        a, b_true = batch[:, :la], batch[:, la:la + lb]
        is_next = (torch.rand(B, generator=gen) < 0.5).to(batch.device)  # (B,)
        if B > 1:  # another window of the corpus (windows are drawn at random offsets)
            b_fake = batch.roll(1, dims=0)[:, T - lb:]
        else:  # one sample only: the segments in the wrong order (ALBERT's SOP)
            a_swap = batch[:, lb:lb + la]
            a = torch.where(is_next[:, None], a, a_swap)
            b_fake = batch[:, :lb]
        b = torch.where(is_next[:, None], b_true, b_fake)
        col = torch.full((B, 1), CLS_ID, dtype=batch.dtype, device=batch.device)
        sep = torch.full((B, 1), SEP_ID, dtype=batch.dtype, device=batch.device)
        return torch.cat([col, a, sep, b, sep], dim=1), is_next.long()

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


def make_objective(name: str, **kwargs) -> CausalLM | PrefixLM | MaskedLM:
    """An objective by name ('causal' | 'prefix' | 'masked')."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name](**kwargs)


# --- fair held-out metrics ---------------------------------------------------------------

@dataclass(frozen=True)
class Metric:
    """One held-out number: total nats over `tokens` scored tokens (token-weighted)."""

    model: str  # 'causal' | 'prefix' | 'masked'
    metric: str  # what was scored, e.g. 'suffix (same positions)'
    nats: float
    tokens: int
    tokens_per_char: float  # of the held-out text: turns bits/token into bits/char
    pseudo: bool = False
    accuracy: float | None = None

    @property
    def bits_per_token(self) -> float:
        return self.nats / LN2 / self.tokens if self.tokens else float("nan")

    @property
    def perplexity(self) -> float:
        return 2.0 ** self.bits_per_token if self.tokens else float("nan")

    @property
    def bits_per_char(self) -> float:
        return self.bits_per_token * self.tokens_per_char

    def as_row(self) -> dict:
        label = "pseudo-perplexity" if self.pseudo else "perplexity"
        return {"model": self.model, "scored": self.metric + (" [pseudo]" if self.pseudo else ""),
                "tokens": self.tokens, "bits/token": self.bits_per_token,
                "bits/char": self.bits_per_char, "per-token " + label: self.perplexity,
                "accuracy": self.accuracy}


@torch.no_grad()
def _logits(model, x, **kw) -> torch.Tensor:
    return model(x.to(next(model.parameters()).device), **kw).float().cpu()


def eval_prefix_lengths(n: int, T: int, seed: int = 0) -> torch.Tensor:
    """(n,) prefix lengths for held-out windows, fixed by `seed` (the same for every model)."""
    return PrefixLM().draw_prefix(n, T, torch.Generator().manual_seed(seed))


def _eval_mode(model):
    was = model.training
    model.eval()
    return was


def suffix_nats(model: torch.nn.Module, windows: torch.Tensor, prefix_len: torch.Tensor,
                mask: str, batch_size: int = 32) -> tuple[float, int]:
    """Total nats and count of the suffix targets (token i+1 >= P) of windows (N, T+1).

    With mask='causal' the model reads left to right; with 'prefix' the first P inputs attend
    bidirectionally. Either way each target is conditioned on exactly the tokens before it.
    """
    was = _eval_mode(model)
    total, count = 0.0, 0
    try:
        for i in range(0, len(windows), batch_size):
            w, plen = windows[i:i + batch_size], prefix_len[i:i + batch_size]
            x, y = w[:, :-1], w[:, 1:]
            kw = {"mask": mask, "prefix_len": plen} if mask == "prefix" else {"mask": mask}
            lp = torch.log_softmax(_logits(model, x, **kw).double(), -1)  # (b, T, V)
            keep = suffix_positions(plen, x.shape[1])
            total -= float(lp.gather(-1, y[..., None])[..., 0][keep].sum())
            count += int(keep.sum())
    finally:
        model.train(was)
    return total, count


def causal_nats(model: torch.nn.Module, windows: torch.Tensor,
                batch_size: int = 32) -> tuple[float, int]:
    """Total nats and count of every target of windows (N, T+1) read left to right."""
    zero = torch.zeros(len(windows), dtype=torch.long)  # prefix 0: every position scored
    return suffix_nats(model, windows, zero, "causal", batch_size)


def pseudo_log_likelihood(model: torch.nn.Module, windows: torch.Tensor,
                          mask_id: int = MASK_ID, batch_size: int = 64) -> tuple[float, int]:
    """(-PLL in nats, tokens) of windows (N, T): each position masked once, scored given the rest.

    Batched: the T copies of a window, copy j with position j replaced by [MASK], form one
    (T, T) batch; the log-probability of the original token at j in copy j is its PLL term.
    """
    was = _eval_mode(model)
    total, count = 0.0, 0
    try:
        N, T = windows.shape
        eye = torch.eye(T, dtype=torch.bool)
        rows = windows[:, None, :].expand(N, T, T).reshape(N * T, T)  # copy j of window n
        masked = rows.masked_fill(eye.repeat(N, 1), mask_id)
        pos = torch.arange(T).repeat(N)  # which position each copy scores
        target = rows[torch.arange(N * T), pos]
        for i in range(0, N * T, batch_size):
            sl = slice(i, i + batch_size)
            logits = _logits(model, masked[sl], mask="bidirectional")  # (b, T, V)
            b = logits.shape[0]
            lp = torch.log_softmax(logits[torch.arange(b), pos[sl]].double(), -1)  # (b, V)
            total -= float(lp.gather(-1, target[sl, None]).sum())
            count += b
    finally:
        model.train(was)
    return total, count


def masked_accuracy(model: torch.nn.Module, windows: torch.Tensor, objective: MaskedLM,
                    seed: int = 0, batch_size: int = 32) -> tuple[float, int, int]:
    """(nats, correct, chosen) of BERT-corrupted windows (N, T) at the training rate, seeded."""
    was = _eval_mode(model)
    gen = torch.Generator().manual_seed(seed)
    nats, correct, chosen = 0.0, 0, 0
    try:
        for i in range(0, len(windows), batch_size):
            w = windows[i:i + batch_size]
            c = objective.corrupt(w, _vocab(model), gen)
            logits = _logits(model, c.inputs, mask="bidirectional")[c.chosen]  # (n, V)
            y = w[c.chosen]
            nats += float(F.cross_entropy(logits.double(), y, reduction="sum"))
            correct += int((logits.argmax(-1) == y).sum())
            chosen += int(c.chosen.sum())
    finally:
        model.train(was)
    return nats, correct, chosen


def disjoint_windows(ids: torch.Tensor, T: int, max_tokens: int | None = None) -> torch.Tensor:
    """(N, T) non-overlapping windows from the start of `ids` (each token in exactly one)."""
    n = len(ids) if max_tokens is None else min(len(ids), max_tokens)
    N = n // T
    if N == 0:
        raise ValueError(f"the held-out text has only {len(ids):,} tokens, fewer than one "
                         f"window of {T}: use a longer text or a smaller context")
    return ids[:N * T].view(N, T)


def fair_metrics(models: dict[str, torch.nn.Module], data, context: int, *,
                 max_tokens: int = 2048, seed: int = 0, rate: float = 0.15,
                 split: str = "valid") -> list[Metric]:
    """The comparison table: every model keyed 'causal' / 'prefix' / 'masked' that is given.

    `data` is a `lmcore.train.data.TokenData`. Causal and prefix are scored on the same
    held-out windows, the same suffix positions and prefix lengths (seeded); the causal model
    also on full windows; the masked model by PLL and masked-token accuracy at `rate`.
    """
    ids = data.ids(split)
    tpc = data.tokens_per_char(split)
    rows: list[Metric] = []
    if "causal" in models or "prefix" in models:
        # windows sharing one token at each seam: every token after the first is a target once
        win = data.eval_windows(context + 1, max_tokens=max_tokens, split=split)  # (N, C + 1)
        plen = eval_prefix_lengths(len(win), context, seed)
        for name in ("causal", "prefix"):
            if name in models:
                nats, n = suffix_nats(models[name], win, plen, name)
                rows.append(Metric(name, "suffix (same positions)", nats, n, tpc))
        if "causal" in models:
            nats, n = causal_nats(models["causal"], win)
            rows.append(Metric("causal", "full sequence", nats, n, tpc))
    if "masked" in models:
        win = disjoint_windows(ids, context, max_tokens)  # (N, context)
        nats, n = pseudo_log_likelihood(models["masked"], win)
        rows.append(Metric("masked", "pseudo-log-likelihood", nats, n, tpc, pseudo=True))
        nats, correct, chosen = masked_accuracy(models["masked"], win, MaskedLM(rate=rate),
                                                seed)
        rows.append(Metric("masked", f"masked tokens at {rate:.0%}", nats, chosen, tpc,
                           accuracy=correct / chosen if chosen else float("nan")))
    return rows


# --- demos -------------------------------------------------------------------------------

@torch.no_grad()
def fill_blanks(model: torch.nn.Module, tokenizer, text: str, kind: str,
                blank: str = "_") -> tuple[str, list[tuple[str, float]]]:
    """Fill each `blank` (one token each) with the model's most likely token; greedy.

    masked: all blanks become [MASK] and are filled most-confident first, using both sides.
    prefix: left to right, the text before a blank read bidirectionally as the prefix.
    causal: left to right from the text before each blank only.
    Returns the filled text and (token, probability) for each blank in text order.
    """
    if blank not in text:
        raise ValueError(f"type a sentence with at least one blank written as {blank!r}")
    pieces = text.split(blank)
    ids: list[int] = [BOS_ID] if kind != "masked" else []
    holes: list[int] = []
    for i, piece in enumerate(pieces):
        ids += tokenizer.encode(piece)
        if i < len(pieces) - 1:
            holes.append(len(ids))
            ids.append(MASK_ID)
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
                p[:, :N_SPECIAL] = 0  # fill with text, never a special token
                best = max(todo, key=lambda j: float(p[j].max()))
                tok = int(p[best].argmax())
                pos, prob = best, float(p[best, tok] / p[best].sum())
            else:
                pos = todo[0]
                ctx = x[:, :pos]  # everything before the blank
                kw = ({"mask": "prefix", "prefix_len": torch.tensor([pos])} if kind == "prefix"
                      else {"mask": "causal"})
                p = torch.softmax(_logits(model, ctx, **kw)[0, -1], -1)
                p[:N_SPECIAL] = 0
                tok = int(p.argmax())
                prob = float(p[tok] / p.sum())
            x[0, pos] = tok
            probs[pos] = prob
            todo.remove(pos)
    finally:
        model.train(was)
    out = x[0].tolist()[1:] if kind != "masked" else x[0].tolist()
    shown = tokenizer.token_strings([x[0, j].item() for j in holes])
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


def build_models(config, seed: int = 0, nsp: bool = False) -> dict[str, torch.nn.Module]:
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
    """One trained objective with its fair held-out rows and attention effective ranks."""

    name: str
    model: torch.nn.Module
    result: object  # lmcore.train.trainer.TrainResult
    metrics: list[Metric]
    ranks: object  # np.ndarray (L, H)


def train_and_score(name: str, model: torch.nn.Module, data, train_config, *,
                    rate: float = 0.15, nsp: bool = False, callback=None,
                    stop=None) -> ObjectiveRun:
    """Train `model` with objective `name` on `data`, then score it fairly on held-out text.

    The held-out windows, prefix lengths and masking draws depend only on the seed in
    `train_config`, so three calls (one per objective) produce directly comparable rows.
    """
    from lmcore.train.effective_rank import attention_effective_ranks
    from lmcore.train.trainer import train

    kw = {"rate": rate, "nsp_weight": 1.0 if nsp else 0.0} if name == "masked" else {}
    result = train(model, make_objective(name, **kw), data, train_config, callback=callback,
                   stop=stop)
    if result.status == "failed":
        raise ValueError(f"{name} training failed: {result.error}")
    context = train_config.context or model.config.context
    rows = fair_metrics({name: model}, data, context, max_tokens=train_config.eval_tokens,
                        seed=train_config.seed, rate=rate)
    win = disjoint_windows(data.ids("valid"), context, 8 * context)
    mask_kw = {}
    if name == "prefix":  # half the window as prefix: both attention patterns in one matrix
        mask_kw = {"mask": "prefix", "prefix_len": torch.full((len(win),), context // 2)}
    ranks = attention_effective_ranks(model, win, **mask_kw)
    return ObjectiveRun(name, model, result, rows, ranks)
