"""Objectives (losses): no leakage through any attention kernel, BERT's masking statistics,
next-sentence pairs, every objective trains through the trainer."""

from __future__ import annotations

import pytest
import torch
from objective_models import V, tiny, token_data

import lmcore.models.attention as attention_module
from lmcore.data.tokenizers import MASK_ID, N_SPECIAL, train_tokenizer
from lmcore.models.transformer import Transformer, TransformerConfig
from lmcore.train.fill_blanks import fill_blanks
from lmcore.train.objectives import CausalLM, MaskedLM, PrefixLM, make_objective, suffix_positions
from lmcore.train.trainer import TrainConfig, train

IMPLS = ("naive", "sdpa", "tiled")


@pytest.fixture
def small_tiles(monkeypatch):
    """4×4 tiles for the tiled kernel, so a 14-token input spans many tiles and tile masks."""
    monkeypatch.setattr(attention_module, "default_blocks", lambda batch_heads: (4, 4))


def _other(ids: torch.Tensor) -> torch.Tensor:
    """Every id replaced by a different ordinary id."""
    return (ids - N_SPECIAL + 3) % (V - N_SPECIAL) + N_SPECIAL


@pytest.mark.parametrize("impl", IMPLS)
def test_prefix_rows_never_see_the_suffix(impl, small_tiles):
    m = tiny("prefix", attention=impl)
    x = torch.randint(N_SPECIAL, V, (4, 14), generator=torch.Generator().manual_seed(0))
    plen = torch.tensor([1, 5, 8, 13])  # prefixes ending inside and at the edges of tiles
    base = m(x, mask="prefix", prefix_len=plen)
    for b in range(4):
        P = int(plen[b])
        y = x.clone()
        y[b, P:] = _other(y[b, P:])  # perturb suffix tokens only
        out = m(y, mask="prefix", prefix_len=plen)
        torch.testing.assert_close(out[b, :P], base[b, :P], atol=1e-6, rtol=1e-5)  # every row < P
        assert not torch.allclose(out[b, P:], base[b, P:], atol=1e-4)  # the suffix did change
        rest = [i for i in range(4) if i != b]
        torch.testing.assert_close(out[rest], base[rest], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_causal_outputs_ignore_every_future_token(impl, small_tiles):
    m = tiny(attention=impl)
    x = torch.randint(N_SPECIAL, V, (2, 14), generator=torch.Generator().manual_seed(1))
    base = m(x, mask="causal")
    for j in range(1, 14):
        y = x.clone()
        y[:, j] = _other(y[:, j])  # one future token
        out = m(y, mask="causal")
        torch.testing.assert_close(out[:, :j], base[:, :j], atol=1e-6, rtol=1e-5)
        assert not torch.allclose(out[:, j], base[:, j], atol=1e-4)


def test_prefix_loss_positions_never_see_their_target():
    m = tiny("prefix")
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(N_SPECIAL, V, (4, 12), generator=gen)
    plen = PrefixLM().draw_prefix(4, 12, gen)
    keep = suffix_positions(plen, 12)
    base = m(x, mask="prefix", prefix_len=plen)
    for b in range(4):
        P = int(plen[b])
        assert keep[b].tolist() == [i >= P - 1 for i in range(12)]
        for i in range(11):
            y = x.clone()
            y[b, i + 1:] = (y[b, i + 1:] + 1 - N_SPECIAL) % (V - N_SPECIAL) + N_SPECIAL
            changed = not torch.allclose(m(y, mask="prefix", prefix_len=plen)[b, i],
                                         base[b, i], atol=1e-6)
            # a loss position never sees its target; a prefix position before P-1 does
            assert changed == (i < P - 1), (b, i, P)


@pytest.mark.parametrize("rate", [0.15, 0.3])
def test_masking_statistics(rate):
    obj = MaskedLM(rate=rate)
    gen = torch.Generator().manual_seed(0)
    chosen = masked = randomized = kept = total = 0
    for _ in range(20):
        batch = torch.randint(N_SPECIAL, V, (64, 128), generator=gen)
        batch[:, 0] = 5  # a special token ([CLS]) is never chosen
        c = obj.corrupt(batch, V, gen)
        assert not c.chosen[:, 0].any()
        assert torch.equal(c.inputs[~c.chosen], batch[~c.chosen])  # others untouched
        assert (c.inputs[c.masked] == MASK_ID).all()
        assert (c.inputs[c.randomized] >= N_SPECIAL).all()  # random tokens are ordinary
        total += batch[:, 1:].numel()
        chosen += int(c.chosen.sum())
        masked += int(c.masked.sum())
        randomized += int(c.randomized.sum())
        kept += int((c.chosen & ~c.masked & ~c.randomized).sum())
    assert abs(chosen / total - rate) < 0.005
    assert abs(masked / chosen - 0.8) < 0.01
    assert abs(randomized / chosen - 0.1) < 0.01
    assert abs(kept / chosen - 0.1) < 0.01


def test_masking_is_seeded_and_never_empty():
    a = MaskedLM().corrupt(torch.full((1, 3), 9), V, torch.Generator().manual_seed(1))
    b = MaskedLM().corrupt(torch.full((1, 3), 9), V, torch.Generator().manual_seed(1))
    assert torch.equal(a.inputs, b.inputs) and a.chosen.sum() >= 1
    with pytest.raises(ValueError, match="rate"):
        MaskedLM(rate=0)


def test_objectives_train_through_the_trainer_and_fill_blanks():
    text = "".join(c * 16 for c in "abcdefgh") * 6  # runs of one letter
    tok = train_tokenizer("char", text)
    data = token_data(text, tok)
    cfg = TrainConfig(steps=40, batch_size=8, lr=1e-2, eval_every=0, eval_tokens=64,
                      memory_every=0)
    kinds = {"causal": "causal", "prefix": "prefix", "masked": "bidirectional"}
    for name, mask in kinds.items():
        torch.manual_seed(0)
        m = Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=12, n_layer=1,
                                          n_head=2, n_embd=32, mask=mask))
        result = train(m, make_objective(name), data, cfg)
        assert result.status == "done", result.error
        assert result.losses[-1] < 0.5 * result.losses[0], (name, result.losses[::10])
        filled, probs = fill_blanks(m, tok, "ccc_cccc", name)
        assert filled == "cccccccc", (name, filled)
        assert probs[0][0] == "c" and 0 < probs[0][1] <= 1
        if name == "masked":  # only the masked model reads the right-hand side
            assert fill_blanks(m, tok, "_ccccccc", name)[0] == "cccccccc"
    with pytest.raises(ValueError, match="blank"):
        fill_blanks(m, tok, "no blanks here", "masked")


def test_nsp_head_trains_with_the_masked_loss():
    m = Transformer(TransformerConfig(vocab_size=V, context=12, n_layer=1, n_head=2,
                                      n_embd=16, mask="bidirectional", nsp_head=True))
    obj = MaskedLM(nsp_weight=1.0)
    gen = torch.Generator().manual_seed(0)
    batch = torch.randint(N_SPECIAL, V, (6, 12), generator=gen)
    pairs, labels = obj.nsp_pairs(batch, torch.Generator().manual_seed(3))
    assert (pairs[:, 0] == 5).all() and (pairs[:, 5] == 6).all() and (pairs[:, -1] == 6).all()
    nxt = labels.bool()
    assert torch.equal(pairs[nxt, 6:11], batch[nxt, 4:9])  # B continues A when is-next
    loss = obj.loss(m, batch, gen)
    loss.backward()
    assert m.nsp.weight.grad is not None and m.nsp.weight.grad.abs().sum() > 0
    assert obj.last_nsp_accuracy is not None
    with pytest.raises(ValueError, match="next-sentence head"):
        MaskedLM(nsp_weight=1.0).loss(tiny("bidirectional"), batch, gen)


def test_objective_windows_and_names():
    assert CausalLM().window(16) == PrefixLM().window(16) == 17 and MaskedLM().window(16) == 16
    with pytest.raises(ValueError, match="unknown objective"):
        make_objective("seq2seq")
