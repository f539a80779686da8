"""Transformer: shapes, every variant learns, masks never leak, the LM contract holds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lmcore.models.lm import score_ids
from lmcore.models.transformer import (
    ACTIVATIONS,
    ConfigError,
    Transformer,
    TransformerConfig,
    TransformerLM,
)

V = 12


def tiny(**kw) -> Transformer:
    torch.manual_seed(0)
    base = dict(vocab_size=V, context=16, n_layer=2, n_head=2, n_embd=16)
    return Transformer(TransformerConfig(**{**base, **kw}))


def test_shapes_and_attention_weights():
    m = tiny()
    x = torch.randint(0, V, (3, 9))
    assert m(x).shape == (3, 9, V)
    logits, att = m(x, return_attention=True)
    assert logits.shape == (3, 9, V) and len(att) == 2
    assert att[0].shape == (3, 2, 9, 9)
    torch.testing.assert_close(att[0].sum(-1), torch.ones(3, 2, 9))
    assert torch.all(att[0].triu(1) == 0)  # causal: no weight on the future
    torch.testing.assert_close(logits, m(x), atol=1e-5, rtol=1e-5)


def test_param_count_is_sum_of_numel_and_tied_counted_once():
    for tie in (True, False):
        m = tiny(tie_weights=tie)
        distinct = {id(p): p.numel() for p in m.parameters()}
        assert m.num_parameters() == sum(distinct.values())
        assert m.num_parameters() == sum(t.numel() for t in {
            t.data_ptr(): t for t in m.state_dict().values()}.values())
    assert tiny(tie_weights=False).num_parameters() - tiny().num_parameters() == V * 16


def test_flops_formula():
    m = tiny()
    N = m.num_parameters(non_embedding=True)
    assert N == m.num_parameters() - 16 * 16  # position table dropped
    assert m.flops_per_token(training=False) == 2 * N + 4 * 2 * 16 * 16
    assert m.flops_per_token() == 6 * N + 12 * 2 * 16 * 16
    assert m.flops_per_token(T=4) < m.flops_per_token()


def test_bad_config_and_inputs_raise_clear_errors():
    with pytest.raises(ConfigError, match="multiple of n_head"):
        TransformerConfig(vocab_size=5, n_embd=10, n_head=3)
    with pytest.raises(ConfigError, match="activation"):
        TransformerConfig(vocab_size=5, activation="softplus")
    m = tiny()
    with pytest.raises(ValueError, match="context"):
        m(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="0..11"):
        m(torch.full((1, 3), V, dtype=torch.long))
    with pytest.raises(ValueError, match="prefix_len"):
        m(torch.zeros(1, 3, dtype=torch.long), mask="prefix")


TEXT = torch.tensor([3, 4, 5, 6, 7, 8, 9, 10] * 4)


@pytest.mark.parametrize("variant", [dict(activation=a) for a in ACTIVATIONS] + [
    dict(norm="rmsnorm"), dict(norm_position="post"), dict(residual=False, n_layer=1),
    dict(tie_weights=False, bias=False), dict(dropout=0.1), dict(attention="naive"),
    dict(attention="tiled")])
def test_every_variant_learns_a_repeated_string(variant):
    m = tiny(**variant)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    x, y = TEXT[:-1][None, :16], TEXT[1:][None, :16]
    losses = []
    for _ in range(25):
        loss = torch.nn.functional.cross_entropy(m(x).view(-1, V), y.view(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("impl", ["naive", "sdpa", "tiled"])
def test_causal_mask_does_not_leak(impl):
    m = tiny(attention=impl).eval()
    x = torch.randint(0, V, (2, 12))
    y = x.clone()
    y[:, 7:] = (y[:, 7:] + 1) % V
    a, b = m(x), m(y)
    torch.testing.assert_close(a[:, :7], b[:, :7], atol=1e-6, rtol=1e-5)
    assert not torch.allclose(a[:, 7:], b[:, 7:])


@pytest.mark.parametrize("impl", ["naive", "sdpa", "tiled"])
def test_prefix_mask_hides_suffix_from_prefix(impl):
    m = tiny(attention=impl, mask="prefix").eval()
    x = torch.randint(0, V, (2, 12))
    plen = torch.tensor([5, 8])
    y = x.clone()
    y[0, 5:] = (y[0, 5:] + 1) % V
    y[1, 8:] = (y[1, 8:] + 1) % V
    a, b = m(x, prefix_len=plen), m(y, prefix_len=plen)
    torch.testing.assert_close(a[0, :5], b[0, :5], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(a[1, :8], b[1, :8], atol=1e-6, rtol=1e-5)
    # ...while a change inside the prefix reaches earlier prefix positions (bidirectional)
    z = x.clone()
    z[0, 4] = (z[0, 4] + 1) % V
    assert not torch.allclose(m(z, prefix_len=plen)[0, 0], a[0, 0])


def test_implementations_agree():
    x = torch.randint(0, V, (2, 11))
    outs = [tiny(attention=impl).eval()(x) for impl in ("naive", "sdpa", "tiled")]
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0], atol=1e-5, rtol=1e-4)


def test_bidirectional_sees_the_future():
    m = tiny(mask="bidirectional").eval()
    x = torch.randint(0, V, (1, 8))
    y = x.clone()
    y[0, -1] = (y[0, -1] + 1) % V
    assert not torch.allclose(m(x)[0, 0], m(y)[0, 0])


@pytest.mark.parametrize("stride", [1, 3, 8])
def test_lm_batched_equals_sequential_with_sliding_window(stride):
    lm = TransformerLM(tiny(context=8), bos_id=2, stride=stride)
    ids = torch.randint(3, V, (21,)).tolist()
    batched = lm.token_logprobs(ids)
    seq = np.array([lm.next_logprobs(ids[:t])[ids[t]] for t in range(len(ids))])
    np.testing.assert_allclose(batched, seq, atol=1e-5, rtol=0)
    lp = lm.next_logprobs(ids)
    assert lp.dtype == np.float64 and lp.shape == (V,)
    assert abs(np.logaddexp.reduce(lp)) < 1e-9


def test_lm_uses_bos_and_last_window():
    m = tiny(context=8)
    lm = TransformerLM(m, bos_id=2, stride=1)
    with torch.no_grad():
        first = torch.log_softmax(m.eval()(torch.tensor([[2]]))[0, -1].double(), -1)
        ids = list(range(3, 12))  # 9 ids + BOS > context 8
        last = torch.log_softmax(m(torch.tensor([ids[-8:]]))[0, -1].double(), -1)
    np.testing.assert_allclose(lm.next_logprobs([]), first.numpy(), atol=1e-9)
    np.testing.assert_allclose(lm.next_logprobs(ids), last.numpy(), atol=1e-9)


def test_score_in_bits_per_char():
    lm = TransformerLM(tiny())
    ids = [3, 4, 5, 6]
    s = score_ids(lm, ids, "abcd")
    assert s.tokens == 4 and s.chars == 4
    assert math.isclose(s.bits, -lm.token_logprobs(ids).sum() / math.log(2))
    assert math.isclose(s.bits_per_char, s.bits / 4)


def test_fingerprint_changes_with_a_weight():
    m = tiny()
    lm = TransformerLM(m)
    fp = lm.fingerprint()
    assert fp == TransformerLM(tiny()).fingerprint()
    with torch.no_grad():
        m.h[0].mlp.c_fc.weight[0, 0] += 1e-3
    assert lm.fingerprint() != fp
    assert lm.num_parameters() == m.num_parameters()


def test_masked_model_refuses_left_to_right_contract():
    with pytest.raises(ValueError, match="pseudo"):
        TransformerLM(tiny(mask="bidirectional"))
