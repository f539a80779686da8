"""How big and how slow will a model be? Sizes without allocating, steps timed on this machine.

`shape_only()` builds a Transformer on PyTorch's "meta" device: every parameter has its shape
but no storage, so a 500M-parameter request is counted (and refused by the `max_params` limit)
without allocating 2 GB. `vocab_estimate()` gives the vocabulary a tokenizer will have before
it is trained. `calibrate()` times a few real training steps of a fixed small Transformer and
returns the training FLOP/s this machine actually reaches (far below the matmul peak for tiny
models); `step_seconds()` scales that to another configuration by its FLOPs per token
(6N + 12·L·T·d); `run_seconds()` adds the run's held-out evaluations.
"""

from __future__ import annotations

import math
import time
from collections import Counter

import torch

from lmcore.data.tokenizers import (
    DEFAULT_MIN_FREQUENCY,
    DEFAULT_VOCAB,
    FALLBACK_TOKENS,
    N_SPECIAL,
)
from lmcore.models.transformer import Transformer, TransformerConfig


def shape_only(config: TransformerConfig) -> Transformer:
    """The model of `config` with parameters on the meta device: shapes, counts, no memory."""
    with torch.device("meta"):
        return Transformer(config)


def count_parameters(config: TransformerConfig) -> int:
    """Distinct parameters of the model `config` describes (tied matrices once), not allocated."""
    return shape_only(config).num_parameters()


def vocab_estimate(kind: str, train_text: str, vocab_size: int | None = None) -> int:
    """The vocabulary a `kind` tokenizer trained on `train_text` will have.

    Exact for char (special + byte-fallback tokens + the distinct characters the trainer keeps)
    and byte (special + 256); for the trained kinds the requested size, an upper bound (a short
    text can yield fewer merges).
    """
    if kind == "byte":
        return N_SPECIAL + 256
    if kind == "char":
        base = N_SPECIAL + len(FALLBACK_TOKENS)
        least = DEFAULT_MIN_FREQUENCY["char"]
        chars = set(train_text) if least <= 1 else {
            c for c, n in Counter(train_text).items() if n >= least}
        n = base + len(chars)
        return n if vocab_size is None else min(n, vocab_size)
    return int(vocab_size or DEFAULT_VOCAB.get(kind, 1000))


def calibrate(steps: int = 3, batch: int = 8, context: int = 64,
              threads: int | None = None) -> float:
    """Training FLOP/s measured on a 2-layer, width-64 model (median of `steps` steps), on
    `threads` torch threads (the count a job's process runs on; default: as now)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        cfg = TransformerConfig(vocab_size=96, context=context, n_layer=2, n_head=4, n_embd=64)
        model = Transformer(cfg)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randint(0, 96, (batch, context + 1), generator=gen)
        times = []
        for _ in range(steps + 1):
            t0 = time.perf_counter()
            logits = model(x[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    dt = sorted(times[1:])[len(times[1:]) // 2]  # first step warms up
    return model.flops_per_token(training=True) * batch * context / dt


def step_seconds(model: Transformer, batch_size: int, context: int | None = None,
                 flops_per_s: float | None = None) -> float:
    """Estimated seconds per training step of `model` at this batch size and context."""
    context = context or model.config.context
    rate = flops_per_s or calibrate()
    return model.flops_per_token(training=True, T=context) * batch_size * context / rate


def run_seconds(step_s: float, steps: int, batch_size: int, context: int, eval_every: int,
                eval_tokens: int) -> float:
    """Seconds of a whole run: its steps, and its evaluations (the trainer's `evaluate`: at
    every `eval_every` steps and at the end, `eval_tokens` held-out and as many training
    tokens in batches of `batch_size` windows, forward only, about a third of a step each)."""
    evals = ((steps - 1) // eval_every if eval_every else 0) + 1
    batches = 2 * math.ceil(math.ceil(eval_tokens / max(context, 1)) / max(batch_size, 1))
    return steps * step_s + evals * batches * step_s / 3
