"""Transformer: shapes, every variant learns, masks never leak, the LM contract holds."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lmcore.models.lm import score_ids
from lmcore.models.transformer import (
    ACTIVATIONS,
    MLP,
    Block,
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


@pytest.mark.parametrize("field,value,words", [
    ("n_layer", "2", "n_layer must be a whole number, got '2' (str)"),
    ("n_layer", 1.5, "n_layer must be a whole number, got 1.5 (float)"),
    ("n_layer", True, "n_layer must be a whole number, got True (bool)"),
    ("vocab_size", None, "vocab_size must be a whole number"),
    ("n_embd", 0, "n_embd must be at least 1"),
    ("mlp_ratio", "4", "mlp_ratio must be a finite number"),
    ("mlp_ratio", float("nan"), "mlp_ratio must be a finite number"),
    ("mlp_ratio", False, "mlp_ratio must be a finite number"),
    ("dropout", "0.1", "dropout must be a finite number"),
    ("dropout", 1.0, "dropout must lie in [0, 1)"),
    ("residual", 1, "residual must be true or false, got 1 (int)"),
    ("tie_weights", "no", "tie_weights must be true or false"),
    ("bias", None, "bias must be true or false"),
    ("nsp_head", 0, "nsp_head must be true or false"),
    ("norm", ["rmsnorm"], "norm must be one of"),
    ("attention", "flash", "attention must be one of sdpa, naive, tiled"),
])
def test_config_types_are_checked_and_the_error_names_the_field(field, value, words):
    kw = dict(vocab_size=V, n_layer=1, n_head=2, n_embd=8)
    with pytest.raises(ConfigError, match=re.escape(words)):
        TransformerConfig(**{**kw, field: value})
    with pytest.raises(ConfigError, match=re.escape(words)):  # the same through from_dict
        TransformerConfig.from_dict({**TransformerConfig(**kw).to_dict(), field: value})


def test_config_accepts_numpy_integers_and_stores_plain_ints():
    c = TransformerConfig(vocab_size=np.int64(V), n_layer=np.int32(2), n_head=2, n_embd=8,
                          mlp_ratio=np.float64(2.5), dropout=0)
    assert type(c.vocab_size) is int and type(c.n_layer) is int and c.n_layer == 2
    assert TransformerConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ConfigError, match="vocab_size is missing"):
        TransformerConfig.from_dict({"n_layer": 2})
    with pytest.raises(ConfigError, match="must be a mapping"):
        TransformerConfig.from_dict([("vocab_size", 5)])


# --- every knob changes the network --------------------------------------------------------

def _same_weights(a: Transformer, b: Transformer) -> None:
    """Copy b's parameters into a wherever names and shapes match (a knob's own params differ)."""
    own = a.state_dict()
    shared = {k: v for k, v in b.state_dict().items() if k in own and own[k].shape == v.shape}
    a.load_state_dict(shared, strict=False)


def _zero_sublayers(m: Transformer) -> None:
    """Attention and MLP outputs become exactly 0: a block is then only its wiring."""
    with torch.no_grad():
        for block in m.h:
            for lin in (block.attn.c_proj, block.mlp.c_proj):
                lin.weight.zero_()
                lin.bias.zero_()


X = torch.randint(0, V, (2, 9), generator=torch.Generator().manual_seed(3))


def test_residual_off_drops_the_skip_connection():
    on, off = tiny(n_layer=1).eval(), tiny(n_layer=1, residual=False).eval()
    _same_weights(off, on)
    assert not torch.allclose(on(X), off(X), atol=1e-4)
    # with the sublayers silenced a pre-norm block with residuals is the identity, without
    # them it outputs zeros
    _zero_sublayers(on)
    _zero_sublayers(off)
    x = torch.randn(2, 9, 16)
    kw = dict(causal=True, prefix_len=None, key_padding_mask=None)
    torch.testing.assert_close(on.h[0](x, **kw)[0], x)
    assert torch.equal(off.h[0](x, **kw)[0], torch.zeros_like(x))


def test_post_norm_normalises_after_the_residual_and_drops_the_final_norm():
    pre, post = tiny().eval(), tiny(norm_position="post").eval()
    _same_weights(post, pre)
    assert isinstance(pre.ln_f, torch.nn.LayerNorm) and isinstance(post.ln_f, torch.nn.Identity)
    assert not torch.allclose(pre(X), post(X), atol=1e-4)
    _zero_sublayers(pre)
    _zero_sublayers(post)
    x = torch.randn(2, 9, 16) * 3 + 1
    kw = dict(causal=True, prefix_len=None, key_padding_mask=None)
    torch.testing.assert_close(pre.h[0](x, **kw)[0], x)  # pre-norm: x + 0
    ln = post.h[0].ln_2(post.h[0].ln_1(x))  # post-norm: norm(norm(x + 0) + 0)
    torch.testing.assert_close(post.h[0](x, **kw)[0], ln)
    assert not torch.allclose(ln, x)


def test_rmsnorm_is_used_and_changes_the_output():
    ln, rms = tiny().eval(), tiny(norm="rmsnorm").eval()
    for m, kind in ((ln, torch.nn.LayerNorm), (rms, torch.nn.RMSNorm)):
        norms = [m.ln_f] + [b.ln_1 for b in m.h] + [b.ln_2 for b in m.h]
        assert all(type(n) is kind for n in norms), [type(n) for n in norms]
    _same_weights(rms, ln)
    assert torch.equal(rms.wte.weight, ln.wte.weight)  # everything else is the same
    assert not torch.allclose(ln(X), rms(X), atol=1e-4)
    x = torch.randn(3, 16) + 2.0  # a non-zero mean: LayerNorm removes it, RMSNorm does not
    torch.testing.assert_close(rms.h[0].ln_1(x), x / x.pow(2).mean(-1, keepdim=True).add(1e-5)
                               .sqrt())


REFERENCE_ACTS = {
    "relu": F.relu,
    "gelu": F.gelu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "swiglu": lambda h: h.chunk(2, -1)[0] * F.silu(h.chunk(2, -1)[1]),
}


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_each_activation_is_the_one_applied(activation):
    cfg = TransformerConfig(vocab_size=V, n_layer=1, n_head=2, n_embd=8, activation=activation)
    mlp = MLP(cfg)
    width = 2 * cfg.mlp_hidden if activation == "swiglu" else cfg.mlp_hidden
    assert mlp.c_fc.out_features == width and mlp.c_proj.in_features == cfg.mlp_hidden
    h = torch.randn(4, width) * 3
    torch.testing.assert_close(mlp.act(h), REFERENCE_ACTS[activation](h))
    for other, ref in REFERENCE_ACTS.items():  # and it is none of the others
        if other != activation and ref(h).shape == mlp.act(h).shape:
            assert not torch.allclose(mlp.act(h), ref(h), atol=1e-3), other
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(mlp(x), mlp.c_proj(REFERENCE_ACTS[activation](mlp.c_fc(x))))


def test_activations_change_the_model_output():
    outs = {}
    base = tiny(activation="gelu").eval()
    for act in ("relu", "gelu", "tanh", "sigmoid"):  # same weight shapes: only the function
        m = tiny(activation=act).eval()
        _same_weights(m, base)
        outs[act] = m(X)
    acts = list(outs)
    for i, a in enumerate(acts):
        for b in acts[i + 1:]:
            assert not torch.allclose(outs[a], outs[b], atol=1e-5), (a, b)


def test_dropout_changes_train_mode_output_only():
    drop, plain = tiny(dropout=0.5), tiny()
    _same_weights(drop, plain)
    torch.manual_seed(1)
    a, b = drop.train()(X), drop(X)
    assert not torch.allclose(a, b, atol=1e-5)  # a fresh mask per call
    drop.eval()
    plain.eval()
    assert torch.equal(drop(X), drop(X))
    torch.testing.assert_close(drop(X), plain(X))  # eval: dropout is the identity
    assert not torch.allclose(a, plain(X), atol=1e-5)
    assert all(m.p == 0.5 for m in drop.modules() if isinstance(m, torch.nn.Dropout))
    assert isinstance(drop.h[0], Block)


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
