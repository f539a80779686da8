"""The attention walk-through: its hand-computed steps equal the layer's own forward, the
shapes are the note's, 1/√d keeps softmax from saturating, and a padding mask makes a padded
batch give each sentence's own outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lmcore.data.tokenizers import train_tokenizer
from lmcore.models.attention_shapes import saturation, walk_through
from lmcore.models.transformer import Transformer, TransformerConfig

SENTENCES = ["the cat sat on the mat", "a dog", "the end"]


@pytest.fixture(scope="module")
def model_and_tok():
    tok = train_tokenizer("char", " ".join(SENTENCES))
    torch.manual_seed(0)
    net = Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=32, n_layer=1,
                                        n_head=2, n_embd=16))
    return net, tok


def test_shapes_and_equality_with_the_layer(model_and_tok):
    net, tok = model_and_tok
    w = walk_through(net, tok, SENTENCES, causal=True)
    B, T, D, H = 3, len(SENTENCES[0]), 16, 2
    shapes = {s.name: s.shape for s in w.steps}
    assert shapes["X"] == (B, T, D) and shapes["Q heads"] == (B, H, T, D // H)
    assert shapes["scores"] == (B, H, T, T) and shapes["weights"] == (B, H, T, T)
    assert shapes["output"] == (B, T, D)
    assert w.module_error < 1e-12  # the hand computation is the layer's forward
    wts = w.step("weights").value
    np.testing.assert_allclose(wts.sum(-1), 1.0, atol=1e-12)
    assert (wts[:, :, np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] == 0).all()
    # scores really are Q Kᵀ / √d of the shown heads
    q, k = w.step("Q heads").value, w.step("K heads").value
    np.testing.assert_allclose(w.step("scores").value, q @ k.swapaxes(-1, -2) / math.sqrt(8))


def test_padding_mask_makes_padding_change_nothing(model_and_tok):
    net, tok = model_and_tok
    on = walk_through(net, tok, SENTENCES, causal=False, padding_mask=True)
    off = walk_through(net, tok, SENTENCES, causal=False, padding_mask=False)
    assert on.alone_error < 1e-12 and off.alone_error > 1e-4
    T = on.lengths[0]
    # a real query row of 'a dog' (length 5) loses exactly the T - 5 pad keys
    assert on.padding_removed == sum(n * (T - n) for n in on.lengths)
    assert not on.mask[1, 0, 5:].any() and on.mask[1, 0, :5].all()
    causal = walk_through(net, tok, SENTENCES, causal=True, padding_mask=False)
    assert causal.alone_error < 1e-12  # right padding: the causal mask already hides pads
    # real row i loses keys i+1 .. T-1 (later tokens and every pad): n(T-1) - n(n-1)/2
    assert causal.causal_removed == sum(n * (T - 1) - n * (n - 1) // 2 for n in causal.lengths)
    assert causal.padding_removed == 0


def test_unscaled_scores_saturate_softmax():
    rows = {s.d: s for s in saturation([4, 64, 256], T=64)}
    for s in rows.values():
        assert s.score_std["scaled"] == pytest.approx(1.0, abs=0.15)
        assert s.score_std["unscaled"] == pytest.approx(math.sqrt(s.d), rel=0.15)
    assert rows[256].max_weight["unscaled"] > 0.8 > 0.2 > rows[256].max_weight["scaled"]
    assert rows[4].entropy_bits["unscaled"] > rows[256].entropy_bits["unscaled"]


def test_bad_input(model_and_tok):
    net, tok = model_and_tok
    with pytest.raises(ValueError, match="at least one sentence"):
        walk_through(net, tok, ["  "])
    with pytest.raises(ValueError, match="up to 8"):
        walk_through(net, tok, ["a"] * 9)
