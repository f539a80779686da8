"""How long will a training step take? FLOPs per step divided by this machine's measured rate.

`calibrate()` times a few real training steps of a fixed small Transformer and returns the
training FLOP/s this machine actually reaches (far below the matmul peak for tiny models);
`step_seconds()` scales that to another configuration by its FLOPs per token (6N + 12·L·T·d).
"""

from __future__ import annotations

import time

import torch

from lmcore.models.transformer import Transformer, TransformerConfig


def calibrate(steps: int = 3, batch: int = 8, context: int = 64) -> float:
    """Training FLOP/s measured on a 2-layer, width-64 model (median of `steps` steps)."""
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
    dt = sorted(times[1:])[len(times[1:]) // 2]  # first step warms up
    return model.flops_per_token(training=True) * batch * context / dt


def step_seconds(model: Transformer, batch_size: int, context: int | None = None,
                 flops_per_s: float | None = None) -> float:
    """Estimated seconds per training step of `model` at this batch size and context."""
    context = context or model.config.context
    rate = flops_per_s or calibrate()
    return model.flops_per_token(training=True, T=context) * batch_size * context / rate
