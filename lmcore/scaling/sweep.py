"""Scaling sweeps on a corpus: loss against model size, against data, and at fixed compute.

Every point is one real training run (lmcore's trainer, causal LM, char tokens, recorded in the
run store) scored on held-out text in bits per character. Three sweeps:

- `size_sweep`: a ladder of model shapes, every one trained on the same number of tokens
  (Kaplan et al. 2020's L(N) at fixed D);
- `budget_sweep`: one shape trained for several token budgets (L(D) at fixed N), each budget
  its own run with its own learning-rate schedule (Hoffmann et al. 2022: a cosine cut short
  is not a shorter run);
- `isoflop_sweep`: for each compute budget C, every shape gets the steps that spend C
  (D = C / FLOPs per token), so loss against size shows the compute-optimal size.

N is the non-embedding parameter count (blocks and final norm, without the token and
position tables, as Kaplan count it); compute C = the trainer's FLOPs per token
(6N' + 12·L·T·d, N' including the tied output head) × tokens trained.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lmcore.data.corpus import Corpus
from lmcore.data.tokenizers import train_tokenizer
from lmcore.models.transformer import Transformer, TransformerConfig
from lmcore.runs.store import RunStore
from lmcore.settings import get_settings
from lmcore.train.data import TokenData
from lmcore.train.estimate import count_parameters, shape_only
from lmcore.train.objectives import CausalLM
from lmcore.train.record import Recorder
from lmcore.train.trainer import Step, TrainConfig, seeded, train


@dataclass(frozen=True)
class Shape:
    """Depth, width and heads of one model in a ladder."""

    n_layer: int
    n_embd: int
    n_head: int

    @property
    def label(self) -> str:
        return f"{self.n_layer}x{self.n_embd}"

    @classmethod
    def parse(cls, text: str) -> Shape:
        """'LxD' or 'LxDxH' (heads default to D / 16, at least 1)."""
        try:
            parts = [int(p) for p in text.lower().split("x")]
        except ValueError:
            parts = []
        if len(parts) not in (2, 3) or min(parts) < 1:
            raise ValueError(f"a model shape is LAYERSxWIDTH or LAYERSxWIDTHxHEADS, e.g. 2x48, "
                             f"got {text!r}")
        heads = parts[2] if len(parts) == 3 else max(1, parts[1] // 16)
        if parts[1] % heads:
            raise ValueError(f"shape {text}: width {parts[1]} is not a multiple of {heads} heads")
        return cls(parts[0], parts[1], heads)


# Six shapes spanning ~45x in non-embedding parameters (3.3k .. 150k): minutes on one core.
SIZES = (Shape(1, 16, 2), Shape(1, 24, 2), Shape(1, 32, 2), Shape(2, 32, 2), Shape(2, 48, 4),
         Shape(3, 64, 4))
LARGER_SIZES = SIZES + (Shape(4, 96, 4), Shape(6, 128, 8))
# IsoFLOP default: the whole ladder. At budgets where the largest shape trains 25 and 50 steps
# the smallest shapes won at both (no interior optimum); at 125 and 400 steps (3e11 and 1e12
# FLOPs on the built-in corpus, 182 s on one thread) the best measured size is 1x32 (12,768
# non-embedding parameters, 2.698 bits/char) and then 2x32 (25,472, 2.157): an optimum inside
# the ladder that grows with compute.
ISOFLOP_SIZES = SIZES


@dataclass
class SweepConfig:
    """What every run of a sweep shares besides its shape and length."""

    context: int = 64
    batch_size: int = 32
    lr: float = 5e-3
    warmup_steps: int = 30
    seed: int = 0
    eval_tokens: int = 8192  # held-out targets scored per run

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.context


@dataclass
class Point:
    """One trained model: its size, what it cost and its held-out loss."""

    sweep: str  # 'size' | 'budget' | 'isoflop'
    label: str
    n_layer: int
    n_embd: int
    n_head: int
    params: int  # every distinct parameter
    non_embedding: int  # N: without the token and position tables
    steps: int
    tokens: int  # D: tokens trained on
    flops: float  # C: training FLOPs (the trainer's count)
    bits_per_char: float  # held-out
    valid_loss: float  # nats per token, held-out
    seconds: float
    status: str
    run_id: str
    budget: float | None = None  # the isoflop budget this point belongs to

    def row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class SweepResult:
    kind: str
    points: list[Point] = field(default_factory=list)
    tokenizer: str = ""
    seconds: float = 0.0
    status: str = "done"  # 'done' or 'stopped'
    skipped: list[str] = field(default_factory=list)  # runs the plan left out, and why


def non_embedding_params(model: Transformer) -> int:
    """Parameters outside the token and position tables (Kaplan et al.'s N)."""
    skip = {id(model.wte.weight), id(model.wpe.weight)}
    seen, n = set(), 0
    for p in model.parameters():
        if id(p) not in seen and id(p) not in skip:
            seen.add(id(p))
            n += p.numel()
    return n


def prepare(corpus: Corpus) -> tuple[TokenData, str]:
    """Char tokens of the corpus's train/validation split (bits/char is tokenizer-free)."""
    split = corpus.split()
    tok = train_tokenizer("char", split.train)
    return TokenData.from_corpus(corpus, tok), f"char ({tok.vocab_size})"


def model_config(shape: Shape, vocab_size: int, context: int) -> TransformerConfig:
    return TransformerConfig(vocab_size=vocab_size, context=context, n_layer=shape.n_layer,
                             n_head=shape.n_head, n_embd=shape.n_embd)


def flops_per_step(shape: Shape, vocab_size: int, cfg: SweepConfig) -> float:
    """Training FLOPs of one step of `shape` (shapes only: nothing allocated)."""
    m = shape_only(model_config(shape, vocab_size, cfg.context))
    return float(m.flops_per_token(training=True)) * cfg.tokens_per_step


# A step's wall time on a CPU is roughly a fixed overhead plus its FLOPs: the weight of a run
# in the progress bar (so the ETA does not think a 3k-parameter run is free).
_OVERHEAD_FLOPS = 1e8


@dataclass
class Plan:
    """The runs a sweep will make: (shape, steps, budget) each."""

    runs: list[tuple[Shape, int, float | None]]
    skipped: list[str] = field(default_factory=list)  # why a (shape, budget) was left out

    def work(self, vocab_size: int, cfg: SweepConfig) -> list[float]:
        return [steps * (flops_per_step(s, vocab_size, cfg) + _OVERHEAD_FLOPS)
                for s, steps, _ in self.runs]


def size_plan(shapes: Sequence[Shape], steps: int) -> Plan:
    return Plan([(s, int(steps), None) for s in shapes])


def budget_plan(shape: Shape, steps: Sequence[int]) -> Plan:
    return Plan([(shape, int(n), None) for n in sorted(set(steps))])


def isoflop_plan(shapes: Sequence[Shape], budgets: Sequence[float], vocab_size: int,
                 cfg: SweepConfig, min_steps: int = 20, max_steps: int = 4000) -> Plan:
    """For each budget C, each shape trains for round(C / FLOPs per step) steps.

    Shapes that would get fewer than `min_steps` (too big for the budget) or more than
    `max_steps` (too small to be worth it) are skipped, and the plan says which.
    """
    plan = Plan([])
    for c in sorted(budgets):
        for s in shapes:
            n = round(c / flops_per_step(s, vocab_size, cfg))
            if n < min_steps or n > max_steps:
                plan.skipped.append(f"{s.label} at {c:.2g} FLOPs would train {n:,} steps "
                                    f"(outside {min_steps}..{max_steps:,})")
                continue
            plan.runs.append((s, n, float(c)))
    return plan


ProgressFn = Callable[[float, str], None]


def run_plan(kind: str, plan: Plan, corpus: Corpus, cfg: SweepConfig | None = None, *,
             data: TokenData | None = None, tokenizer: str = "",
             on_progress: ProgressFn | None = None,
             on_point: Callable[[Point], None] | None = None,
             on_step: Callable[[Point | None, Step], None] | None = None,
             stop: threading.Event | None = None, session: str | None = None,
             store: RunStore | None = None) -> SweepResult:
    """Train every run of `plan` on `corpus` and score it; each run recorded in the store.

    `on_step(None, step)` sees every training step (for a live loss curve); `on_point` each
    finished point. A set `stop` ends the current run early (it is still scored and kept,
    status 'stopped') and skips the rest.
    """
    cfg = cfg or SweepConfig()
    if not plan.runs:
        raise ValueError("nothing to train: every size was outside the step range for these "
                         "budgets (" + "; ".join(plan.skipped[:3]) + ")")
    if data is None:
        data, tokenizer = prepare(corpus)
    data.check(cfg.context + 1)
    vocab = int(max(int(data.train.max()), int(data.valid.max())) + 1)
    vocab = max(vocab, _vocab_of(tokenizer, vocab))
    settings = get_settings()
    for shape, steps, _ in plan.runs:
        settings.check("max_steps", steps)
        settings.check("max_params", count_parameters(model_config(shape, vocab, cfg.context)))
    store = store or RunStore()
    work = plan.work(vocab, cfg)
    total = sum(work)
    done = 0.0
    say = on_progress or (lambda f, m: None)
    result = SweepResult(kind, tokenizer=tokenizer, skipped=list(plan.skipped))
    t0 = time.perf_counter()
    for i, ((shape, steps, budget), w) in enumerate(zip(plan.runs, work, strict=True)):
        if stop is not None and stop.is_set():
            result.status = "stopped"
            break
        mcfg = model_config(shape, vocab, cfg.context)
        model = seeded(lambda mcfg=mcfg: Transformer(mcfg), cfg.seed)
        tcfg = TrainConfig(steps=steps, batch_size=cfg.batch_size, context=cfg.context,
                           lr=cfg.lr, warmup_steps=min(cfg.warmup_steps, max(steps // 10, 1)),
                           eval_every=0, eval_tokens=cfg.eval_tokens, memory_every=0,
                           seed=cfg.seed)
        name = f"scaling {kind} {shape.label} · {steps:,} steps"
        if budget is not None:
            name += f" · C={budget:.2g}"
        run_id = store.create(name, {"model": mcfg.to_dict(), "train": dataclasses.asdict(tcfg),
                                     "sweep": kind, "budget": budget},
                              corpus_name=corpus.name, corpus_fingerprint=corpus.fingerprint,
                              tokenizer=tokenizer, session=session)
        label = f"{i + 1}/{len(plan.runs)} {shape.label}"

        def feed(e: Any, w: float = w, label: str = label, before: float = done) -> None:
            if isinstance(e, Step):
                say((before + w * e.step / e.steps) / total,
                    f"run {label}: step {e.step}/{e.steps} · loss {e.loss:.3f}")
                if on_step is not None:
                    on_step(None, e)

        res = train(model, CausalLM(), data, tcfg, callback=Recorder(store, run_id, then=feed),
                    stop=stop)
        if res.status == "failed":
            raise ValueError(f"run {shape.label} ({steps} steps) failed: {res.error}")
        done += w
        tokens = res.steps * cfg.tokens_per_step
        point = Point(sweep=kind, label=shape.label, n_layer=shape.n_layer, n_embd=shape.n_embd,
                      n_head=shape.n_head, params=model.num_parameters(),
                      non_embedding=non_embedding_params(model), steps=res.steps, tokens=tokens,
                      flops=float(model.flops_per_token(training=True)) * tokens,
                      bits_per_char=res.bits_per_char, valid_loss=res.valid_loss,
                      seconds=res.elapsed_s, status=res.status, run_id=run_id, budget=budget)
        final = dict(store.get(run_id).final or {})
        final.update(non_embedding=point.non_embedding, tokens=tokens, flops=point.flops)
        store.update(run_id, final=final)
        result.points.append(point)
        if on_point is not None:
            on_point(point)
        if res.status == "stopped":
            result.status = "stopped"
            break
    result.seconds = time.perf_counter() - t0
    return result


def _vocab_of(tokenizer: str, fallback: int) -> int:
    """The vocabulary size written in 'char (97)'; `fallback` when absent."""
    try:
        return int(tokenizer.rsplit("(", 1)[1].rstrip(")"))
    except (IndexError, ValueError):
        return fallback


def size_sweep(corpus: Corpus, shapes: Sequence[Shape] = SIZES, steps: int = 300,
               cfg: SweepConfig | None = None, **kw: Any) -> SweepResult:
    """Every shape trained for the same `steps` (the same tokens): loss against N."""
    return run_plan("size", size_plan(shapes, steps), corpus, cfg, **kw)


def budget_sweep(corpus: Corpus, shape: Shape = Shape(2, 48, 4),
                 steps: Sequence[int] = (25, 50, 100, 200, 400),
                 cfg: SweepConfig | None = None, **kw: Any) -> SweepResult:
    """One shape trained for several budgets, each its own run: loss against D."""
    return run_plan("budget", budget_plan(shape, steps), corpus, cfg, **kw)


def isoflop_sweep(corpus: Corpus, budgets: Sequence[float] = (3e11, 1e12),
                  shapes: Sequence[Shape] = ISOFLOP_SIZES, cfg: SweepConfig | None = None,
                  **kw: Any) -> SweepResult:
    """For each compute budget, each shape at the steps that spend it: loss against N."""
    cfg = cfg or SweepConfig()
    data, tokenizer = kw.pop("data", None), kw.pop("tokenizer", "")
    if data is None:
        data, tokenizer = prepare(corpus)
    vocab = _vocab_of(tokenizer, int(data.train.max()) + 1)
    plan = isoflop_plan(shapes, budgets, vocab, cfg)
    return run_plan("isoflop", plan, corpus, cfg, data=data, tokenizer=tokenizer, **kw)


def default_budgets(shapes: Sequence[Shape], vocab_size: int, cfg: SweepConfig,
                    steps_of_largest: Sequence[int] = (125, 400)) -> list[float]:
    """Budgets at which the largest shape trains for `steps_of_largest` steps."""
    f = flops_per_step(max(shapes, key=lambda s: flops_per_step(s, vocab_size, cfg)),
                       vocab_size, cfg)
    return [float(f"{f * n:.2g}") for n in steps_of_largest]

