"""One new token per sequence through a Transformer, with a KV cache laid out for that step.

A decoding step has one query per (sequence, head), so its attention is two thin matmuls
over the cache: scores = q · Kᵀ, then weights · V. `Transformer.forward` with a `KVCache`
serves every shape (prefill, masks, weights) and pays for it on this one: input checks that
read the ids back, a mask dispatch, the fused attention kernel's per-call set-up. Here the
cache holds every (sequence, head) pair's keys and values flat, (B·H, capacity, D), so a
step's attention is two batched matmuls, and the layers are walked with the network's own
weights, norms and activation (its residual and norm placement too). At 64 sequences of the
4x128 model on 2 cores, attention is memory-bound: a step reads ~25 MB of keys and values. Side by
side, whole files code 13-23% faster than through `forward` (`bench/compress.py`).

The floats differ from `forward`'s in the last bits (another summation order), so a coder
must use one or the other on both sides: `lmcore.info.streams` says which a file used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lmcore.models.transformer import KVCache, Transformer


class StepCache:
    """Every layer's keys and values, each (B·H, capacity, D): (sequence, head) pairs flat."""

    def __init__(self, net: Transformer, batch: int):
        c = net.config
        self.B, self.H, self.D, self.capacity = batch, c.n_head, c.head_dim, c.context
        p = next(net.parameters())
        shape = (batch * c.n_head, c.context, c.head_dim)
        self.k = [p.new_empty(shape) for _ in range(c.n_layer)]  # each (B·H, C, D)
        self.v = [p.new_empty(shape) for _ in range(c.n_layer)]
        self.length = 0

    def load(self, cache: KVCache) -> None:
        """Take over a prefill's cache: each layer's (B, H, T, D) keys and values."""
        B, H, D, C = self.B, self.H, self.D, self.capacity
        T = cache.length
        for i, (k, v) in enumerate(zip(cache.k, cache.v, strict=True)):
            self.k[i].view(B, H, C, D)[:, :, :T] = k
            self.v[i].view(B, H, C, D)[:, :, :T] = v
        self.length = T

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store this step's (B, H, D) key and value of `layer` at position `length`."""
        B, H, D, C, t = self.B, self.H, self.D, self.capacity, self.length
        self.k[layer].view(B, H, C, D)[:, :, t] = k
        self.v[layer].view(B, H, C, D)[:, :, t] = v


def _attend(attn, h: torch.Tensor, cache: StepCache, layer: int) -> torch.Tensor:
    """(B, C) output of one attention layer for one new token per sequence."""
    B, H, D = cache.B, cache.H, cache.D
    qkv = F.linear(h, attn.c_attn.weight, attn.c_attn.bias).view(B, 3, H, D)
    cache.write(layer, qkv[:, 1], qkv[:, 2])
    n = cache.length + 1  # keys seen, this token's included
    q = (qkv[:, 0] * D ** -0.5).reshape(B * H, 1, D)  # (B·H, 1, D), scaled as sdpa does
    w = torch.softmax(torch.bmm(q, cache.k[layer][:, :n].transpose(1, 2)), dim=-1)  # (B·H, 1, n)
    y = torch.bmm(w, cache.v[layer][:, :n])  # (B·H, 1, D)
    y = y.view(B, H * D)  # (B, C): heads side by side, as in forward
    return F.linear(y, attn.c_proj.weight, attn.c_proj.bias)


@torch.no_grad()
def decode_step(net: Transformer, idx: torch.Tensor, cache: StepCache) -> torch.Tensor:
    """(B, V) next-token logits after feeding token ids `idx` (B,) at position
    `cache.length`; the cache takes this step's keys and values. Call in eval mode."""
    if cache.length >= cache.capacity:
        raise ValueError(f"the cache holds {cache.capacity} tokens, the model's context: "
                         "refill it from a shorter window")
    x = net.wte.weight[idx] + net.wpe.weight[cache.length]  # (B, C); no dropout in eval mode
    for i, block in enumerate(net.h):
        # sub-modules' forward called directly: no hooks to run, and ~1 µs a call less
        x = block._sub(x, lambda h, a=block.attn, i=i: _attend(a, h, cache, i),
                       block.ln_1.forward)
        x = block._sub(x, block.mlp.forward, block.ln_2.forward)
    cache.length += 1
    return net.lm_head.forward(net.ln_f.forward(x))  # (B, V)
