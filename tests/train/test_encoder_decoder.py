"""Encoder-decoder and its denoising objective: no target leaks into the decoder (any kernel),
encoder padding changes nothing, corrupted sources never contain a hidden token, the fair
suffix score reads only the tokens before each target, and it trains through the trainer."""

from __future__ import annotations

import pytest
import torch
from objective_models import V

import lmcore.models.attention as attention_module
from lmcore.data.tokenizers import BOS_ID, MASK_ID, N_SPECIAL
from lmcore.models.encoder_decoder import EncoderDecoder
from lmcore.models.transformer import TransformerConfig
from lmcore.train.denoising import Denoising, decoder_input, pack, prefix_source
from lmcore.train.fair_metrics import encdec_suffix_nats
from lmcore.train.objectives import make_objective

IMPLS = ("naive", "sdpa", "tiled")


def tiny_encdec(**kw) -> EncoderDecoder:
    torch.manual_seed(0)
    base = dict(vocab_size=V, context=16, n_layer=2, n_head=2, n_embd=16)
    return EncoderDecoder(TransformerConfig(**{**base, **kw})).eval()


@pytest.fixture
def small_tiles(monkeypatch):
    monkeypatch.setattr(attention_module, "default_blocks", lambda batch_heads: (4, 4))


def _other(ids: torch.Tensor) -> torch.Tensor:
    return (ids - N_SPECIAL + 3) % (V - N_SPECIAL) + N_SPECIAL


@pytest.mark.parametrize("impl", IMPLS)
def test_decoder_never_sees_its_target(impl, small_tiles):
    m = tiny_encdec(attention=impl)
    g = torch.Generator().manual_seed(0)
    w = torch.randint(N_SPECIAL, V, (3, 15), generator=g)  # windows of context - 1 tokens
    src = torch.randint(N_SPECIAL, V, (3, 9), generator=g)
    with torch.no_grad():
        base = m(src, decoder_input(w))  # (3, 15, V): position j predicts w[j]
        for j in range(15):
            y = w.clone()
            y[:, j] = _other(y[:, j])  # the target of position j, input of j + 1
            out = m(src, decoder_input(y))
            torch.testing.assert_close(out[:, :j + 1], base[:, :j + 1], atol=1e-6, rtol=1e-5)
            if j + 1 < 15:
                assert not torch.allclose(out[:, j + 1], base[:, j + 1], atol=1e-4)


@pytest.mark.parametrize("impl", IMPLS)
def test_encoder_padding_changes_nothing(impl, small_tiles):
    m = tiny_encdec(attention=impl)
    g = torch.Generator().manual_seed(1)
    w = torch.randint(N_SPECIAL, V, (2, 10), generator=g)
    short = [[9, 10, 11, MASK_ID], [12, 13, 14, 15, 16, 17, MASK_ID]]
    src, mask = pack(short)
    with torch.no_grad():
        a = m(src, decoder_input(w), mask)
        src2 = src.clone()
        src2[~mask] = 18  # garbage where the padding is
        b = m(src2, decoder_input(w), mask)
        one = m(torch.tensor([short[0]]), decoder_input(w[:1]))  # alone, no padding at all
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(a[:1], one, atol=1e-5, rtol=1e-5)


def test_corrupted_sources_never_hold_a_hidden_token():
    obj = Denoising(rate=0.3, sequential=0.5)
    g = torch.Generator().manual_seed(2)
    w = torch.arange(N_SPECIAL, N_SPECIAL + 17).repeat(40, 1)  # distinct tokens per window
    n = obj.corrupt(w, g)
    assert n.src.shape[1] <= 16  # fits an encoder of context 16
    for i in range(len(w)):
        seen = [t for t in n.src[i][n.src_mask[i]].tolist() if t != MASK_ID]
        assert seen == w[i][~n.hidden[i]].tolist()  # exactly the visible tokens, in order
        assert n.hidden[i].any()
    tail = [bool(h[h.nonzero()[0]:].all()) and bool(h[-1]) for h in n.hidden]
    assert 0.3 < sum(tail) / len(tail) < 0.8  # about half the samples mask the tail
    rates = n.hidden.float().mean(1)[[not t for t in tail]]
    assert abs(float(rates.mean()) - 0.3) < 0.05  # infilling hides `rate` of the window


def test_fair_suffix_score_reads_only_the_past():
    m = tiny_encdec()
    g = torch.Generator().manual_seed(3)
    w = torch.randint(N_SPECIAL, V, (1, 17), generator=g)  # (1, C + 1)
    P = 6
    assert prefix_source(w[0], P) == w[0, :P].tolist() + [MASK_ID]
    base, n = encdec_suffix_nats(m, w, torch.tensor([P]))
    assert n == 17 - P
    y = w.clone()
    y[0, -1] = _other(y[0, -1])  # only the last target changes: only its own term may change
    with torch.no_grad():
        src, mask = pack([prefix_source(w[0], P)])
        lp_a = torch.log_softmax(m(src, decoder_input(w), mask).double(), -1)
        lp_b = torch.log_softmax(m(src, decoder_input(y), mask).double(), -1)
    torch.testing.assert_close(lp_a[0, :-1], lp_b[0, :-1])
    other, _ = encdec_suffix_nats(m, y, torch.tensor([P]))
    diff = float(-lp_b[0, -1, y[0, -1]] + lp_a[0, -1, w[0, -1]])
    assert other - base == pytest.approx(diff, abs=1e-9)


def test_encdec_trains_through_the_trainer():
    from lmcore.data.tokenizers import train_tokenizer
    from lmcore.train.data import TokenData
    from lmcore.train.trainer import TrainConfig, train

    text = "the cat sat on the mat. the dog sat on the log. " * 40
    tok = train_tokenizer("char", text)
    torch.manual_seed(0)
    m = EncoderDecoder(TransformerConfig(vocab_size=tok.vocab_size, context=16, n_layer=2,
                                         n_head=2, n_embd=16))
    obj = make_objective("encdec")
    assert obj.window(16) == 17 and obj.name == "encdec"
    res = train(m, obj, TokenData.from_text(tok, text, text[:300]),
                TrainConfig(steps=30, batch_size=8, eval_every=0, memory_every=0, lr=1e-2))
    assert res.status == "done", res.error
    assert res.losses[-1] < res.losses[0] - 0.5
    assert BOS_ID == decoder_input(torch.tensor([[9, 9]]))[0, 0]
