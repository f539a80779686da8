"""Supervised fine-tuning (instruction tuning): next-token loss on the response tokens only.

The prompt is context, not a target: the model should learn to answer, not to write
instructions. `sft_loss` averages the cross-entropy over exactly the positions whose loss mask
is 1 (response tokens and <|end|>); prompt tokens and padding never contribute.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lmcore.data.tokenizers import Tokenizer
from lmcore.models.transformer import Transformer
from lmcore.stages.chat import Example, encode_example, pad_batch
from lmcore.train.trainer import TrainConfig, make_optimizer


@dataclass
class StageConfig:
    """The knobs of one fine-tuning stage (SFT or DPO)."""

    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 20
    eval_every: int = 50  # 0: only at the end
    seed: int = 0
    beta: float = 0.1  # DPO only: strength of the pull towards the reference
    nll_weight: float = 1.0  # DPO only: weight of the chosen answers' NLL (0: pure DPO)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"learning rate must be a positive number, got {self.lr}")
        if self.warmup_steps < 0 or self.eval_every < 0:
            raise ValueError("warmup_steps and eval_every must be >= 0")
        if not (math.isfinite(self.beta) and self.beta > 0):
            raise ValueError(f"beta must be a positive number, got {self.beta}")
        if not (math.isfinite(self.nll_weight) and self.nll_weight >= 0):
            raise ValueError(f"nll_weight must be a number >= 0, got {self.nll_weight}")

    def due(self, step: int) -> bool:
        """Whether held-out numbers are measured after `step` (every eval_every, and last)."""
        return step == self.steps or bool(self.eval_every and step % self.eval_every == 0)

    def schedule(self) -> TrainConfig:
        """The trainer's optimizer and learning-rate schedule with these values."""
        return TrainConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr,
                           warmup_steps=self.warmup_steps, seed=self.seed)


def sft_loss(model: Transformer, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) over the targets where `mask` is 1.

    ids (B, T) and mask (B, T): position t of the mask says whether token t is a target.
    """
    return masked_nll(model(ids[:, :-1], mask="causal"), ids, mask)


def masked_nll(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The loss of `sft_loss` from logits (B, T-1, V) predicting ids[:, 1:]."""
    target, keep = ids[:, 1:], mask[:, 1:]  # (B, T-1)
    nll = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")  # (B, T-1)
    n = keep.sum()
    if int(n) == 0:
        raise ValueError("no response tokens in this batch: nothing to learn from")
    return (nll * keep).sum() / n


def update(model: torch.nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor, step: int,
           stage: str) -> float:
    """One optimizer step on `loss` (gradients clipped to norm 1); the loss as a float."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    value = float(loss.detach())
    if not math.isfinite(value):
        raise FloatingPointError(f"the {stage} loss became {value} at step {step}: lower the "
                                 "learning rate")
    return value


def begin(model: Transformer, config: StageConfig
          ) -> tuple[TrainConfig, random.Random, torch.optim.Optimizer]:
    """What SFT and DPO start from: the schedule, seeded torch and batch sampler, the
    optimizer, and the model in training mode."""
    sched = config.schedule()
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    opt = make_optimizer(model, sched)
    model.train()
    return sched, rng, opt


def check_fits(model: Transformer, rows: list[tuple[list[int], list[int]]]) -> None:
    longest = max(len(r) for r, _ in rows)
    if longest > model.config.context:
        raise ValueError(f"an instruction example is {longest} tokens long but the model's "
                         f"context is {model.config.context}: use a model with a longer context")


def train_sft(model: Transformer, tok: Tokenizer, examples: list[Example], config: StageConfig,
              callback: Callable[[dict], None] | None = None,
              stop: threading.Event | None = None,
              evaluate: Callable[[int], dict] | None = None) -> dict:
    """Fine-tune `model` in place on `examples`; report {'step', 'loss', ...} per step.

    `evaluate(step)` (optional) returns held-out numbers logged every `eval_every` steps and
    at the end. Returns the final summary (steps run, last loss, status, seconds).
    """
    rows = [encode_example(tok, ex) for ex in examples]
    if not rows:
        raise ValueError("no instruction examples to tune on")
    check_fits(model, rows)
    emit = callback or (lambda d: None)
    sched, rng, opt = begin(model, config)
    t0 = time.perf_counter()
    loss_v, step = float("nan"), 0
    while step < config.steps and not (stop is not None and stop.is_set()):
        step += 1
        for g in opt.param_groups:
            g["lr"] = sched.lr_at(step)
        ids, mask = pad_batch([rows[rng.randrange(len(rows))]
                               for _ in range(config.batch_size)], tok.pad_id)
        loss = sft_loss(model, ids.to(_device(model)), mask.to(_device(model)))
        loss_v = update(model, opt, loss, step, "SFT")
        point = {"step": step, "steps": config.steps, "loss": loss_v,
                 "elapsed_s": time.perf_counter() - t0}
        if evaluate is not None and config.due(step):
            point.update(evaluate(step))
        emit(point)
    status = "done" if step >= config.steps else "stopped"
    if status == "stopped" and evaluate is not None and step:
        emit({"step": step, "steps": config.steps, "loss": loss_v,
              "elapsed_s": time.perf_counter() - t0, **evaluate(step)})
    return {"status": status, "steps": step, "loss": loss_v,
            "elapsed_s": time.perf_counter() - t0}


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
