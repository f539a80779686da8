"""decode_step: one token per sequence with a KV cache, the same logits as forward's."""

from __future__ import annotations

import pytest
import torch

from lmcore.models.decode_step import StepCache, decode_step
from lmcore.models.transformer import KVCache, Transformer, TransformerConfig

VARIANTS = {
    "gpt2": {},
    "post-norm rmsnorm swiglu": dict(norm="rmsnorm", norm_position="post", activation="swiglu"),
    "no residual, no bias, untied": dict(residual=False, bias=False, tie_weights=False),
    "relu, tiled attention": dict(activation="relu", attention="tiled"),
}


def _net(dtype=torch.float32, **kw) -> Transformer:
    torch.manual_seed(3)
    cfg = TransformerConfig(vocab_size=37, context=24, n_layer=2, n_head=4, n_embd=32, **kw)
    return Transformer(cfg).to(dtype).eval()


@pytest.mark.parametrize("name", VARIANTS)
def test_steps_give_forwards_logits(name):
    """After a prefill, every step's logits are the full forward's at that position
    (float64 weights, so the two summation orders agree to ~1e-12), for 1 and 5 sequences."""
    net = _net(torch.float64, **VARIANTS[name])
    for B in (1, 5):
        ids = torch.randint(0, 37, (B, 24), generator=torch.Generator().manual_seed(B))
        with torch.no_grad():
            want = net(ids, mask="causal")  # (B, T, V)
            prefill = KVCache(2)
            net(ids[:, :7], mask="causal", cache=prefill)
            steps = StepCache(net, B)
            steps.load(prefill)
            for t in range(7, 24):
                got = decode_step(net, ids[:, t], steps)  # (B, V)
                torch.testing.assert_close(got, want[:, t], rtol=1e-10, atol=1e-10)
        assert steps.length == 24


def test_float32_steps_agree_with_forward_to_rounding():
    net = _net()
    ids = torch.randint(0, 37, (3, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = net(ids, mask="causal")
        prefill = KVCache(2)
        net(ids[:, :1], mask="causal", cache=prefill)
        steps = StepCache(net, 3)
        steps.load(prefill)
        got = torch.stack([decode_step(net, ids[:, t], steps) for t in range(1, 20)], dim=1)
    torch.testing.assert_close(got, want[:, 1:], rtol=1e-4, atol=1e-5)


def test_a_full_cache_refuses_another_step():
    net = _net()
    ids = torch.randint(0, 37, (2, 24))
    with torch.no_grad():
        prefill = KVCache(2)
        net(ids, mask="causal", cache=prefill)
        steps = StepCache(net, 2)
        steps.load(prefill)
        with pytest.raises(ValueError, match="holds 24 tokens, the model's context"):
            decode_step(net, ids[:, 0], steps)
