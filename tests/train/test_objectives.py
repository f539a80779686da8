"""Objectives: no leakage, BERT's masking statistics, PLL equals a slow loop, token weighting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lmcore.data.tokenizers import train_tokenizer
from lmcore.models.transformer import Transformer, TransformerConfig
from lmcore.train.data import TokenData
from lmcore.train.effective_rank import attention_effective_ranks, effective_rank
from lmcore.train.objectives import (
    MASK_ID,
    N_SPECIAL,
    CausalLM,
    MaskedLM,
    PrefixLM,
    build_models,
    causal_nats,
    fair_metrics,
    fill_blanks,
    make_blanks,
    make_objective,
    pseudo_log_likelihood,
    suffix_nats,
    suffix_positions,
    train_and_score,
)
from lmcore.train.trainer import TrainConfig, train

V = 20


def tiny(mask="causal", **kw) -> Transformer:
    torch.manual_seed(0)
    base = dict(vocab_size=V, context=16, n_layer=2, n_head=2, n_embd=16, mask=mask)
    return Transformer(TransformerConfig(**{**base, **kw})).eval()


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


def test_causal_outputs_ignore_the_future():
    m = tiny()
    x = torch.randint(N_SPECIAL, V, (2, 10))
    base = m(x, mask="causal")
    for i in range(9):
        y = x.clone()
        y[:, i + 1:] = N_SPECIAL + (y[:, i + 1:] - N_SPECIAL + 3) % (V - N_SPECIAL)
        torch.testing.assert_close(m(y, mask="causal")[:, : i + 1], base[:, : i + 1],
                                   atol=1e-6, rtol=1e-5)


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


def test_pll_equals_slow_reference_loop():
    m = tiny("bidirectional")
    w = torch.randint(N_SPECIAL, V, (3, 7))
    nats, n = pseudo_log_likelihood(m, w, batch_size=5)  # batches cut across windows
    ref = 0.0
    for row in w:
        for j in range(len(row)):
            x = row.clone()
            x[j] = MASK_ID
            with torch.no_grad():
                lp = torch.log_softmax(m(x[None], mask="bidirectional")[0, j].double(), -1)
            ref -= float(lp[row[j]])
    assert n == 21
    assert math.isclose(nats, ref, rel_tol=1e-6)


def test_metrics_are_token_weighted():
    m = tiny()
    w = torch.randint(N_SPECIAL, V, (5, 11))
    plen = torch.tensor([1, 9, 3, 10, 5])  # very different suffix sizes per window
    nats, n = suffix_nats(m, w, plen, "causal", batch_size=2)
    parts = [suffix_nats(m, w[i:i + 1], plen[i:i + 1], "causal") for i in range(5)]
    assert n == sum(p[1] for p in parts) == sum(10 - int(p) + 1 for p in plen)
    assert math.isclose(nats, sum(p[0] for p in parts), rel_tol=1e-9)
    mean_of_means = np.mean([p[0] / p[1] for p in parts])
    assert abs(nats / n - mean_of_means) > 1e-4  # the two averages differ on this input
    full, nf = causal_nats(m, w)
    assert nf == 50 and full > nats  # every target vs the suffix targets only


def test_prefix_zero_equals_causal():
    m = tiny("prefix")
    w = torch.randint(N_SPECIAL, V, (3, 9))
    a = suffix_nats(m, w, torch.zeros(3, dtype=torch.long), "prefix")
    b = causal_nats(m, w)
    assert a[1] == b[1] and math.isclose(a[0], b[0], rel_tol=1e-6)


def _data(text: str, tok) -> TokenData:
    return TokenData.from_text(tok, text, text[: len(text) // 3])


def test_fair_table_compares_same_positions():
    tok = train_tokenizer("char", "abcdefgh")
    data = _data("abcdefgh" * 60, tok)
    models = {k: tiny(k if k != "masked" else "bidirectional", vocab_size=tok.vocab_size)
              for k in ("causal", "prefix", "masked")}
    rows = fair_metrics(models, data, context=8, max_tokens=64)
    by = {(r.model, r.metric): r for r in rows}
    a, b = by[("causal", "suffix (same positions)")], by[("prefix", "suffix (same positions)")]
    assert a.tokens == b.tokens > 0
    assert by[("causal", "full sequence")].tokens == 64
    pll = by[("masked", "pseudo-log-likelihood")]
    assert pll.pseudo and "[pseudo]" in pll.as_row()["scored"] and pll.tokens == 64
    acc = [r for r in rows if r.accuracy is not None][0]
    assert 0 <= acc.accuracy <= 1
    assert math.isclose(a.bits_per_char, a.bits_per_token * data.tokens_per_char("valid"))


def test_objectives_train_through_the_trainer_and_fill_blanks():
    text = "".join(c * 16 for c in "abcdefgh") * 6  # runs of one letter
    tok = train_tokenizer("char", text)
    data = _data(text, tok)
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


def test_effective_rank():
    assert math.isclose(float(effective_rank(torch.eye(6))), 6.0, rel_tol=1e-9)
    one = torch.ones(5, 1) @ torch.rand(1, 5)
    assert math.isclose(float(effective_rank(one)), 1.0, rel_tol=1e-6)
    r = attention_effective_ranks(tiny(), torch.randint(N_SPECIAL, V, (2, 8)))
    assert r.shape == (2, 2) and ((r >= 1) & (r <= 8)).all()


def test_objective_windows_and_names():
    assert CausalLM().window(16) == PrefixLM().window(16) == 17 and MaskedLM().window(16) == 16
    with pytest.raises(ValueError, match="unknown objective"):
        make_objective("seq2seq")


def test_make_blanks_hides_letters_only():
    text = "the cat sat on the mat"
    out = make_blanks(text, n=3, seed=1)
    assert len(out) == len(text) and out.count("_") == 3 and out[0] == "t"
    assert all(a == b or (b == "_" and a.isalpha()) for a, b in zip(text, out, strict=True))
    assert out == make_blanks(text, n=3, seed=1)


def test_build_models_share_initial_weights_and_differ_in_mask():
    cfg = TransformerConfig(vocab_size=V, context=8, n_layer=1, n_head=2, n_embd=16)
    models = build_models(cfg, seed=3, nsp=True)
    assert {n: m.config.mask for n, m in models.items()} == {
        "causal": "causal", "prefix": "prefix", "masked": "bidirectional"}
    sd = {n: m.state_dict() for n, m in models.items()}
    for k, v in sd["causal"].items():
        assert torch.equal(v, sd["prefix"][k]) and torch.equal(v, sd["masked"][k]), k
    assert models["masked"].nsp is not None and models["causal"].nsp is None


def test_train_and_score_gives_comparable_rows():
    tok = train_tokenizer("char", "abcdefgh")
    data = _data("abcdefgh" * 40, tok)
    cfg = TransformerConfig(vocab_size=tok.vocab_size, context=8, n_layer=1, n_head=2,
                            n_embd=16)
    tcfg = TrainConfig(steps=2, batch_size=4, eval_every=0, eval_tokens=48, memory_every=0)
    runs = {n: train_and_score(n, m, data, tcfg) for n, m in build_models(cfg).items()}
    suffix = [r for run in runs.values() for r in run.metrics if r.metric.startswith("suffix")]
    assert len(suffix) == 2 and suffix[0].tokens == suffix[1].tokens
    assert runs["masked"].metrics[0].pseudo
    assert all(run.ranks.shape == (1, 2) and run.result.status == "done"
               for run in runs.values())
