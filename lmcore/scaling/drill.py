"""Training a Transformer on generated problems: loss on the answer only, exact metrics.

The corpus trainer (`lmcore.train.trainer`) reads random windows of one text; a task is
instead a stream of separate (prompt, answer) problems, padded to one width, whose loss counts
only the answer's characters. `drill` is that loop (same optimizer, warmup-then-cosine schedule
and gradient clipping as the trainer), seeded, stoppable, and recorded in the run store.
`answer_metrics` scores answers with one teacher-forced forward pass: per-token loss, per-token
(per-digit) accuracy, and exact match (greedy decoding gets the whole answer right exactly when
every answer token is the argmax given the correct ones before it). `greedy` generates.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from lmcore.models.eval_mode import eval_mode
from lmcore.models.transformer import Transformer, TransformerConfig
from lmcore.runs.store import RunStore
from lmcore.scaling.tasks import STOI, VOCAB, decode, encode
from lmcore.settings import get_settings
from lmcore.train.estimate import count_parameters
from lmcore.train.trainer import TrainConfig, make_optimizer, seeded

LN2 = math.log(2.0)


@dataclass
class DrillConfig:
    """A model shape and its training budget on a task."""

    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    context: int = 32
    steps: int = 1000
    batch_size: int = 64
    lr: float = 3e-3
    warmup_steps: int = 20
    seed: int = 0
    eval_every: int = 50  # 0: only at the end
    min_lr: float | None = None  # the cosine's floor (None: lr / 10; lr: constant after warmup)
    beta2: float = 0.99
    bias_init: str = "zeros"  # zeros (GPT-2) | uniform (PyTorch's default for nn.Linear)

    @property
    def label(self) -> str:
        return f"{self.n_layer}x{self.n_embd}"


def lookup_config(**kw: Any) -> DrillConfig:
    """A DrillConfig for tasks solved by an in-context look-up (induction heads, few-shot):
    uniform random biases and the rate held at `lr` after warmup (beta2 0.999), which leave
    the loss plateau where GPT-2's zeros and a cosine stay (`lmcore.scaling.induction`)."""
    return DrillConfig(**kw, min_lr=kw["lr"], beta2=0.999, bias_init="uniform")


def build(cfg: DrillConfig, vocab_size: int = len(VOCAB)) -> Transformer:
    """The model of `cfg`, its initial weights fixed by the seed; limits checked first."""
    mcfg = TransformerConfig(vocab_size=vocab_size, context=cfg.context, n_layer=cfg.n_layer,
                             n_head=cfg.n_head, n_embd=cfg.n_embd)
    settings = get_settings()
    settings.check("max_params", count_parameters(mcfg))
    settings.check("max_steps", cfg.steps)
    if cfg.bias_init not in ("zeros", "uniform"):
        raise ValueError(f"bias_init must be 'zeros' or 'uniform', got {cfg.bias_init!r}")
    return seeded(lambda: _with_biases(Transformer(mcfg), cfg.bias_init), cfg.seed)


def _with_biases(model: Transformer, init: str) -> Transformer:
    """Draw every Linear bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's default) when
    `init` is 'uniform'; GPT-2's zeros otherwise. Random biases break the symmetry that holds
    a tiny model on a plateau (see `lmcore.scaling.induction`)."""
    if init == "uniform":
        for m in model.modules():
            if isinstance(m, torch.nn.Linear) and m.bias is not None:
                bound = 1.0 / math.sqrt(m.in_features)
                torch.nn.init.uniform_(m.bias, -bound, bound)
    return model


def answer_loss(model: Transformer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats) over target positions (y != -100). x, y: (B, T)."""
    logits = model(x)  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)


@torch.no_grad()
def answer_metrics(model: Transformer, x: torch.Tensor, y: torch.Tensor,
                   batch_size: int = 512) -> dict[str, float]:
    """Teacher-forced: bits per answer token, per-token accuracy, exact-match rate."""
    nll, correct, tokens, exact = 0.0, 0, 0, 0
    with eval_mode(model):
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size], y[i:i + batch_size]
            logits = model(xb)  # (b, T, V)
            mask = yb != -100  # (b, T)
            lp = torch.log_softmax(logits.double(), dim=-1)
            tgt = yb.clamp(min=0)
            nll -= float(lp.gather(-1, tgt[..., None])[..., 0][mask].sum())
            right = (logits.argmax(-1) == yb) & mask  # (b, T)
            correct += int(right.sum())
            tokens += int(mask.sum())
            exact += int((right.sum(1) == mask.sum(1)).sum())
    return {"bits_per_token": nll / max(tokens, 1) / LN2, "token_accuracy": correct / max(tokens, 1),
            "exact_match": exact / max(len(x), 1)}


@torch.no_grad()
def greedy(model: Transformer, prompts: Sequence[str], max_new: int, end: str = ".",
           batch_size: int = 256) -> list[str]:
    """Greedy completions of `prompts` (up to `max_new` characters or the `end` character)."""
    out = [""] * len(prompts)
    end_id = STOI[end]
    by_len: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    with eval_mode(model):
        for idxs in by_len.values():
            for j in range(0, len(idxs), batch_size):
                chunk = idxs[j:j + batch_size]
                ids = torch.tensor([encode(prompts[i]) for i in chunk])  # (b, Tp)
                done = torch.zeros(len(chunk), dtype=torch.bool)
                for _ in range(max_new):
                    if ids.shape[1] >= model.config.context or bool(done.all()):
                        break
                    nxt = model(ids)[:, -1].argmax(-1)  # (b,)
                    ids = torch.cat([ids, nxt[:, None]], dim=1)
                    done |= nxt == end_id
                for row, i in enumerate(chunk):
                    gen = decode(ids[row, len(prompts[i]):].tolist())
                    out[i] = gen.split(end, 1)[0] + (end if end in gen else "")
    return out


@dataclass
class DrillRun:
    """What `drill` did: status, steps, evaluations (one dict per eval), seconds, run id."""

    status: str
    steps: int
    evals: list[dict[str, Any]] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    run_id: str = ""


Sampler = Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]]
Evaluator = Callable[[Transformer, int], dict[str, Any]]


def drill(model: Transformer, sample: Sampler, cfg: DrillConfig, *,
          evaluate: Evaluator | None = None, name: str = "task", task: str = "",
          extra_config: dict | None = None, on_step: Callable[[int, float], None] | None = None,
          on_eval: Callable[[dict[str, Any]], None] | None = None,
          stop: threading.Event | None = None, store: RunStore | None = None,
          session: str | None = None, loss_fn: Callable | None = None) -> DrillRun:
    """Train `model` for `cfg.steps` steps on `sample(gen) -> (x, y)` batches.

    `evaluate(model, step)` runs every `cfg.eval_every` steps and at the end; its dict (with
    'step') goes to `on_eval` and to the run's 'eval' series in the store. A set `stop` ends
    training after the current step (the run is evaluated and recorded as 'stopped').
    """
    store = store or RunStore()
    tcfg = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                       warmup_steps=cfg.warmup_steps, seed=cfg.seed, min_lr=cfg.min_lr,
                       beta2=cfg.beta2)
    run_id = store.create(f"{name} {cfg.label}",
                          {"model": model.config.to_dict(), "drill": asdict(cfg),
                           **(extra_config or {})},
                          corpus_name=f"synthetic: {task or name}", tokenizer="task chars",
                          session=session)
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    opt = make_optimizer(model, tcfg)
    loss_fn = loss_fn or answer_loss
    run = DrillRun(status="running", steps=0, run_id=run_id)
    t0 = time.perf_counter()
    buf: list[tuple[str, int, dict[str, Any]]] = []

    def do_eval(step: int) -> None:
        if evaluate is None:
            return
        row = {"step": step, **evaluate(model, step)}
        run.evals.append(row)
        buf.append(("eval", step, {k: v for k, v in row.items() if k != "step"}))
        if on_eval is not None:
            on_eval(row)

    try:
        model.train()
        do_eval(0)
        step = 0
        while step < cfg.steps:
            if stop is not None and stop.is_set():
                break
            step += 1
            for g in opt.param_groups:
                g["lr"] = tcfg.lr_at(step)
            x, y = sample(gen)
            loss = loss_fn(model, x, y)
            v = float(loss.detach())
            if not math.isfinite(v):
                raise FloatingPointError(f"the loss became {v} at step {step}: lower the "
                                         "learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            run.losses.append(v)
            run.steps = step
            buf.append(("train", step, {"loss": v}))
            if on_step is not None:
                on_step(step, v)
            if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
                do_eval(step)
            if len(buf) >= 200:
                store.log_many(run_id, buf)
                buf.clear()
        if not run.evals or run.evals[-1]["step"] != run.steps:
            do_eval(run.steps)
        run.status = "stopped" if run.steps < cfg.steps else "done"
    except Exception as exc:
        store.log_many(run_id, buf)
        store.finish(run_id, "failed", {"steps": run.steps}, error=str(exc))
        raise
    run.seconds = time.perf_counter() - t0
    store.log_many(run_id, buf)
    final = {"steps": run.steps, "seconds": run.seconds,
             **{k: v for k, v in (run.evals[-1] if run.evals else {}).items()
                if isinstance(v, int | float) and k != "step"}}
    store.finish(run_id, run.status, final)
    return run


def pool_size(most: int, steps: int, batch_size: int) -> int:
    """Problems to generate: `most`, or fewer when training draws fewer (at least 1,000)."""
    return max(1, min(int(most), max(1000, int(steps) * int(batch_size))))


def pool_sampler(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> Sampler:
    """Batches drawn (with the drill's generator) from a pre-generated pool of problems."""

    def sample(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(x), (batch_size,), generator=gen)
        return x[idx], y[idx]

    return sample
