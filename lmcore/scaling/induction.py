"""Induction heads (Olsson et al. 2022): the phase change, the head, and its score.

A small Transformer learns plain next-token prediction on sequences of distinct random tokens
in which one segment of random length occurs twice, at random places. New tokens are
unpredictable (loss near ln V); the second copy's tokens after its first are predictable by
finding the previous occurrence of the current token and copying the token after it, which is
what an induction head does (a previous-token head in layer 0 marks each key with the token
before it; a head in layer 1 matches the current token against those marks). Since the
copies' places and distance vary, no head looking a fixed distance back can do it. In Olsson
et al.'s models the loss on repeated text falls sharply at one point in training (the phase
change); `phase_change` locates the fall in the evaluations so a run shows whether it is
sudden.

Two training choices matter at this size (measured here, 2x64, 4 heads, 4,000 steps, 2
threads): with the drill's defaults (GPT-2's zero biases, a cosine decay, beta2 0.99) seeds 1
and 2 sat on the plateau (loss ln V on the repeat) for the whole run and seed 0 reached 1.21
nats; with PyTorch's default uniform biases, a constant learning rate and beta2 0.999 (the
defaults here) every seed tried leaves the plateau after 400-600 steps and falls fastest
around step 700-900. On 2 threads, seeds 0, 1, 2 reach 1.11, 0.81, 0.53 nats on the
repeat at step 4,000 (new tokens stay at chance, 3.47), often in two stages: first to about
ln L (guessing among the segment's tokens), then lower as layer-1 heads learn the look-up.
Those heads share it: summed over layer 1, scores 0.34, 0.26, 0.75, the best single head
0.19, 0.16, 0.20, against 0.06 for evenly spread attention (`layer_scores`).

Induction score of a head: its attention mass, averaged over the second copy's positions q of
held-out sequences, on the key q + 1 - (b - a) (the token that followed the previous
occurrence of token q); 1 means the head looks only there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from lmcore.models.eval_mode import eval_mode
from lmcore.scaling.drill import build, drill, lookup_config, pool_size
from lmcore.scaling.tasks import Repeats, repeated_segments


@dataclass
class InductionConfig:
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    vocab: int = 32  # random symbols
    T: int = 24  # tokens per sequence
    min_len: int = 3
    max_len: int = 10
    steps: int = 4000
    batch_size: int = 64
    lr: float = 3e-3  # constant after warmup (see the module docstring)
    eval_every: int = 25
    train_sequences: int = 20_000
    test_sequences: int = 256
    seed: int = 0


@dataclass
class InductionResult:
    vocab: int
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per evaluation
    heads: list[str] = field(default_factory=list)  # 'L1H0', ...
    best_head: str = ""
    attention: list[list[float]] = field(default_factory=list)  # (T, T) of the best head
    tokens: list[int] = field(default_factory=list)  # the sequence shown in `attention`
    seg_len: int = 0  # L of that sequence
    first_at: int = 0  # where its copies start (a, b)
    again_at: int = 0
    map_score: float = 0.0  # the head's induction score on that sequence
    status: str = "done"
    seconds: float = 0.0
    run_id: str = ""

    @property
    def uniform_score(self) -> float:
        """What evenly spread attention scores on the same held-out sequences."""
        return float(self.rows[-1]["uniform_score"]) if self.rows else float("nan")

    def final_scores(self) -> dict[str, float]:
        return dict(self.rows[-1]["scores"]) if self.rows else {}

    def layer_scores(self) -> dict[int, float]:
        """Per layer, its heads' final scores summed: the heads' outputs add into the residual
        stream, so a look-up shared by several heads shows here when no one head stands out."""
        out: dict[int, float] = {}
        for name, v in self.final_scores().items():
            layer = head_index(name)[0]
            out[layer] = out.get(layer, 0.0) + v
        return out

    def phase_change(self) -> PhaseChange | None:
        """Where the loss on the repeats fell (`phase_change` of the rows)."""
        return phase_change(self.rows)


def head_index(name: str) -> tuple[int, int]:
    """'L1H2' -> (1, 2): the layer and head a score's name stands for."""
    layer, head = name[1:].split("H")
    return int(layer), int(head)


@dataclass
class PhaseChange:
    """The steps over which a loss fell from 90% to 10% of its whole drop.

    `start`: first evaluation at or below start_loss = low + 0.9 (high - low); `end`: first at
    or below low + 0.1 (high - low); high is the first evaluation's loss, low the lowest.
    `fraction`: (end - start) / the last step: small for a sudden drop, near 1 for a gradual
    one. `steepest`: the pair of consecutive evaluations with the largest fall per step.
    """

    start: int
    end: int
    start_loss: float
    end_loss: float
    fraction: float
    steepest: tuple[int, int]

    def describe(self) -> str:
        a, b = self.steepest
        return (f"90% -> 10% of the drop between steps {self.start} and {self.end} "
                f"({self.fraction:.0%} of training; loss {self.start_loss:.3f} -> "
                f"{self.end_loss:.3f}); fastest fall between steps {a} and {b}")


def phase_change(rows: list[dict[str, Any]], key: str = "repeat_loss",
                 min_drop: float = 0.05) -> PhaseChange | None:
    """Locate the fall of `key` in evaluation rows (each with 'step'), or None when it fell by
    less than `min_drop` (nats) or there are fewer than two rows.

    A phase change shows as a small `fraction` after a plateau (a late `start`); a gradual
    descent spreads the 90% -> 10% range over most of training.
    """
    if len(rows) < 2:
        return None
    steps = [int(r["step"]) for r in rows]
    loss = [float(r[key]) for r in rows]
    high, low = loss[0], min(loss)
    if high - low < min_drop:
        return None

    def first_at_or_below(level: float) -> int:
        return next(i for i, v in enumerate(loss) if v <= level)

    i = first_at_or_below(low + 0.9 * (high - low))
    j = first_at_or_below(low + 0.1 * (high - low))
    rate = [(loss[n] - loss[n + 1]) / max(steps[n + 1] - steps[n], 1)
            for n in range(len(rows) - 1)]
    k = max(range(len(rate)), key=rate.__getitem__)
    return PhaseChange(start=steps[i], end=steps[j], start_loss=loss[i], end_loss=loss[j],
                       fraction=(steps[j] - steps[i]) / max(steps[-1], 1),
                       steepest=(steps[k], steps[k + 1]))


def _lm_loss(model, x, y):
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


@torch.no_grad()
def evaluate(model: torch.nn.Module, test: Repeats) -> dict[str, Any]:
    """Loss on the repeat and on the fresh tokens (nats/token), and every head's score."""
    with eval_mode(model):
        x, y = test.ids[:, :-1], test.ids[:, 1:]
        logits, weights = model(x, return_attention=True)  # (N, T, V), per layer (N, H, T, T)
        nll = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")  # (N, T)
        target = induction_targets(test)
        scores = induction_scores(weights, target)
    return {"repeat_loss": float(nll[test.repeat_mask()].mean()),
            "fresh_loss": float(nll[test.fresh_mask()].mean()),
            "scores": scores, "uniform_score": uniform_score(target)}


def induction_targets(r: Repeats) -> torch.Tensor:
    """(N, T-1, T-1) over the inputs ids[:-1]: True at (query q, key k) when q is in the second
    copy (b <= q < b + L) and k = q + 1 - (b - a), the position after q's previous occurrence."""
    T = r.ids.shape[1] - 1
    q = torch.arange(T)[None, :, None]
    k = torch.arange(T)[None, None, :]
    a, b, L = (v[:, None, None] for v in (r.first_at, r.again_at, r.seg_len))
    return (q >= b) & (q < b + L) & (k == q + 1 - (b - a))


def uniform_score(target: torch.Tensor) -> float:
    """The score of a head that spreads its attention evenly over keys 0..q: the chance level
    a real induction head must stand out from."""
    N, T = target.shape[0], target.shape[-1]
    w = torch.tril(torch.ones(T, T))
    w = (w / w.sum(-1, keepdim=True)).expand(N, 1, T, T)
    return induction_scores([w], target)["L0H0"]


def induction_scores(weights: list[torch.Tensor], target: torch.Tensor) -> dict[str, float]:
    """Per head: attention mass on the token after the previous occurrence of the current
    token, averaged over the queries that have one (rows of `target` with a True).

    `weights`: per layer (N, H, T, T) attention of inputs ids[:-1]; `target`:
    `induction_targets` of the same sequences, (N, T, T).
    """
    t = target.to(weights[0].dtype)
    queries = float(target.any(-1).sum())
    out = {}
    for layer, w in enumerate(weights):
        mass = (w * t[:, None]).sum(dim=(0, 2, 3))  # (H,)
        for h in range(w.shape[1]):
            out[f"L{layer}H{h}"] = float(mass[h]) / max(queries, 1.0)
    return out


def induction(cfg: InductionConfig | None = None, *,
              on_progress: Callable[[float, str], None] | None = None,
              on_row: Callable[[dict[str, Any]], None] | None = None,
              stop: threading.Event | None = None, session: str | None = None,
              store=None) -> InductionResult:
    """Train on repeated segments; follow the repeat's loss and each head's score."""
    cfg = cfg or InductionConfig()
    train = repeated_segments(pool_size(cfg.train_sequences, cfg.steps, cfg.batch_size),
                              cfg.T, cfg.vocab, cfg.min_len, cfg.max_len,
                              "train", cfg.seed)
    test = repeated_segments(cfg.test_sequences, cfg.T, cfg.vocab, cfg.min_len, cfg.max_len,
                             "test", cfg.seed)
    dc = lookup_config(n_layer=cfg.n_layer, n_embd=cfg.n_embd, n_head=cfg.n_head,
                       context=cfg.T - 1, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                       seed=cfg.seed, eval_every=cfg.eval_every)
    model = build(dc, vocab_size=cfg.vocab)
    result = InductionResult(vocab=cfg.vocab)
    say = on_progress or (lambda f, m: None)

    def sample(gen):
        idx = torch.randint(0, len(train.ids), (cfg.batch_size,), generator=gen)
        seqs = train.ids[idx]
        return seqs[:, :-1], seqs[:, 1:]

    def on_eval(row):
        result.rows.append(row)
        if on_row is not None:
            on_row(row)

    def on_step(step, loss):
        if step % 10 == 0:
            say(step / cfg.steps, f"step {step}/{cfg.steps} · loss {loss:.3f}")

    t0 = time.perf_counter()
    run = drill(model, sample, dc, evaluate=lambda m, step: evaluate(m, test),
                name="induction heads", task="repeated segments",
                extra_config={"induction": cfg.__dict__}, on_step=on_step, on_eval=on_eval,
                stop=stop, store=store, session=session, loss_fn=_lm_loss)
    result.status, result.run_id = run.status, run.run_id
    result.seconds = time.perf_counter() - t0
    scores = result.final_scores()
    result.heads = list(scores)
    if scores:
        result.best_head = max(scores, key=scores.get)
        layer, head = head_index(result.best_head)
        # the map: of the held-out sequences whose second copy (of 5+ tokens) lies wholly in
        # the inputs, the one where this head scores highest, named so on the page
        x = test.ids[:, :-1]
        with eval_mode(model), torch.no_grad():
            _, w = model(x, return_attention=True)
        target = induction_targets(test)
        per_seq = ((w[layer][:, head] * target).sum(dim=(1, 2))
                   / target.any(-1).sum(-1).clamp(min=1))  # (N,)
        fits = (test.again_at + test.seg_len <= cfg.T - 1) & (test.seg_len >= min(5, cfg.max_len))
        i = int(torch.argmax(torch.where(fits, per_seq, per_seq - 2.0)))
        result.attention = w[layer][i, head].tolist()
        result.tokens = x[i].tolist()
        result.seg_len = int(test.seg_len[i])
        result.first_at, result.again_at = int(test.first_at[i]), int(test.again_at[i])
        result.map_score = float(per_seq[i])
    return result
