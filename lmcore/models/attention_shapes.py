"""One attention layer taken apart: every tensor of a real forward pass with its shape.

X (B, T, D) -> Q, K, V = X W_q, X W_k, X W_v (B, T, D) -> heads (B, H, T, D/H) -> scores
Q Kᵀ / √(D/H) (B, H, T, T) -> mask (causal and key padding set to -inf) -> weights = softmax
(B, H, T, T) -> weights V (B, H, T, D/H) -> concatenated heads (B, T, D) -> output projection
(B, T, D). The steps are computed here by hand from the layer's own weights and checked
against the layer's forward, so the numbers shown are the model's.

Two lessons come with it: why scores are divided by √d (the dot product of two random d-vectors
has standard deviation √d, so without the scale softmax saturates to one-hot as d grows), and
why a key-padding mask makes a padded batch give the same outputs as each sentence alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from lmcore.models.eval_mode import eval_mode
from lmcore.models.masks import build_mask


@dataclass
class Step:
    """One tensor of the walk-through."""

    name: str
    formula: str
    shape: tuple[int, ...]
    value: np.ndarray = field(repr=False)  # the tensor itself (float64)


@dataclass
class Walkthrough:
    """Every step of one attention layer over a padded batch, and the checks that go with it."""

    tokens: list[list[str]]  # each sentence's tokens (unpadded)
    lengths: list[int]
    steps: list[Step]
    mask: np.ndarray  # (B, T, T) bool: entries kept (True) after causal + padding
    causal: bool
    causal_removed: int  # entries the causal mask removes (over real query rows)
    padding_removed: int  # further entries the padding mask removes (keys that are padding)
    scaled: bool
    padding_mask: bool
    module_error: float  # max |output - the layer's own forward| (a check, ~1e-15)
    alone_error: float  # max |output at real positions - each sentence run alone|

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


def _layer_input(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """What the first attention layer reads: token + position embeddings, normed if pre-norm."""
    pos = torch.arange(ids.shape[1])
    x = model.wte(ids) + model.wpe(pos)  # (B, T, D)
    block = model.h[0]
    return block.ln_1(x) if block.pre else x


def attention_steps(model: torch.nn.Module, ids: torch.Tensor, lengths: list[int], *,
                    scaled: bool = True, padding_mask: bool = True,
                    causal: bool = True) -> tuple[list[Step], torch.Tensor, torch.Tensor]:
    """The first layer's attention on (B, T) ids with each row's real `lengths`: the steps,
    the (B, 1, T, T) mask used and the output (B, T, D), in float64."""
    attn = model.h[0].attn
    H = attn.n_head
    model = model.double()
    with eval_mode(model), torch.no_grad():
        x = _layer_input(model, ids)  # (B, T, D)
        B, T, D = x.shape
        d = D // H
        qkv = attn.c_attn(x)  # (B, T, 3D)
        q, k, v = qkv.split(D, dim=2)  # (B, T, D) each
        qh = q.view(B, T, H, d).transpose(1, 2)  # (B, H, T, d)
        kh = k.view(B, T, H, d).transpose(1, 2)
        vh = v.view(B, T, H, d).transpose(1, 2)
        scale = 1.0 / math.sqrt(d) if scaled else 1.0
        scores = (qh @ kh.transpose(-2, -1)) * scale  # (B, H, T, T)
        real = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]  # (B, T)
        mask = build_mask(T, T, causal=causal,
                          key_padding_mask=real if padding_mask else None)
        if mask is None:
            mask = torch.ones(1, 1, T, T, dtype=torch.bool)
        mask = mask.expand(B, 1, T, T)
        masked = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(masked, dim=-1)  # (B, H, T, T)
        heads = weights @ vh  # (B, H, T, d)
        concat = heads.transpose(1, 2).reshape(B, T, D)  # (B, T, D)
        out = attn.c_proj(concat)  # (B, T, D)
    steps = [
        Step("X", "token + position embeddings (normed)", (B, T, D), x.numpy()),
        Step("Q, K, V", "X W_qkv, split in three", (B, T, 3 * D), qkv.numpy()),
        Step("Q heads", "Q viewed as H heads", (B, H, T, d), qh.numpy()),
        Step("K heads", "K viewed as H heads", (B, H, T, d), kh.numpy()),
        Step("V heads", "V viewed as H heads", (B, H, T, d), vh.numpy()),
        Step("scores", "Q Kᵀ / √d" if scaled else "Q Kᵀ (unscaled)", (B, H, T, T),
             scores.numpy()),
        Step("masked scores", "−∞ where the mask hides a key", (B, H, T, T), masked.numpy()),
        Step("weights", "softmax over keys", (B, H, T, T), weights.numpy()),
        Step("head outputs", "weights · V", (B, H, T, d), heads.numpy()),
        Step("concat", "heads side by side", (B, T, D), concat.numpy()),
        Step("output", "concat W_o", (B, T, D), out.numpy()),
    ]
    return steps, mask, out


def walk_through(model: torch.nn.Module, tokenizer, sentences: list[str], *,
                 scaled: bool = True, padding_mask: bool = True,
                 causal: bool | None = None) -> Walkthrough:
    """The first attention layer of `model` (a lmcore Transformer, float64 copy) on a batch
    of unequal `sentences`, right-padded with the tokenizer's PAD id.

    `causal` None uses the model's own mask. With right padding a causal mask already hides
    every pad key from the real rows (pads come later), so the padding mask then only changes
    the pad rows; with bidirectional attention (an encoder) it is what keeps pads out."""
    import copy

    sentences = [s for s in sentences if s.strip()]
    if not sentences:
        raise ValueError("type at least one sentence (one per line)")
    if len(sentences) > 8:
        raise ValueError(f"{len(sentences)} sentences: the walk-through shows up to 8")
    net = copy.deepcopy(getattr(model, "model", model))
    C = net.config.context
    enc = [tokenizer.encode(s)[:C] for s in sentences]
    if not all(enc):
        raise ValueError("a sentence has no tokens under this tokenizer")
    lengths = [len(e) for e in enc]
    T = max(lengths)
    ids = torch.full((len(enc), T), tokenizer.pad_id, dtype=torch.long)
    for i, e in enumerate(enc):
        ids[i, :len(e)] = torch.tensor(e)
    if causal is None:
        causal = net.config.mask != "bidirectional"
    steps, mask, out = attention_steps(net, ids, lengths, scaled=scaled,
                                       padding_mask=padding_mask, causal=causal)
    # reference: the layer's own forward (only meaningful with the model's real scaling)
    with eval_mode(net), torch.no_grad():
        x = _layer_input(net, ids)
        real = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
        ref, _ = net.h[0].attn(x, causal=causal, prefix_len=None,
                               key_padding_mask=real if padding_mask else None)
    module_error = float((ref - out).abs().max()) if scaled else float("nan")
    # each sentence alone, no padding at all: the real positions must agree
    alone = 0.0
    for i, e in enumerate(enc):
        _, _, o = attention_steps(net, torch.tensor([e]), [len(e)], scaled=scaled,
                                  padding_mask=False, causal=causal)
        alone = max(alone, float((out[i, :len(e)] - o[0]).abs().max()))
    m = mask[:, 0].numpy()  # (B, T, T)
    causal_keep = np.tril(np.ones((T, T), dtype=bool)) if causal else np.ones((T, T), bool)
    rows = np.arange(T)[None, :, None] < np.array(lengths)[:, None, None]  # real query rows
    causal_removed = int((rows & ~causal_keep[None]).sum())
    padding_removed = int((rows & causal_keep[None] & ~m).sum())
    return Walkthrough([tokenizer.token_strings(e) for e in enc], lengths, steps, m, causal,
                       causal_removed, padding_removed, scaled, padding_mask, module_error,
                       alone)


@dataclass(frozen=True)
class Saturation:
    """Softmax of q·k over T random keys at head width d, with and without 1/√d."""

    d: int
    score_std: dict[str, float]  # 'scaled' / 'unscaled'
    max_weight: dict[str, float]  # mean over rows of the largest weight (1 = one-hot)
    entropy_bits: dict[str, float]  # mean row entropy (log2 T = uniform)


def saturation(dims: list[int], T: int = 64, rows: int = 256, seed: int = 0
               ) -> list[Saturation]:
    """For each head width d: q, k ~ N(0, 1)^d (what a layer norm hands attention), scores
    q·k and q·k/√d; their spread, the softmax's largest weight and its entropy."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for d in dims:
        q = torch.randn(rows, d, generator=g, dtype=torch.float64)
        k = torch.randn(T, d, generator=g, dtype=torch.float64)
        raw = q @ k.T  # (rows, T)
        res: dict[str, dict[str, float]] = {"std": {}, "max": {}, "ent": {}}
        for label, s in (("unscaled", raw), ("scaled", raw / math.sqrt(d))):
            p = torch.softmax(s, -1)
            res["std"][label] = float(s.std())
            res["max"][label] = float(p.max(-1).values.mean())
            res["ent"][label] = float(-(p * torch.log2(p.clamp_min(1e-300))).sum(-1).mean())
        out.append(Saturation(d, res["std"], res["max"], res["ent"]))
    return out
