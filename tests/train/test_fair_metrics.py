"""Fair held-out metrics: PLL equals a slow loop, token weighting, exact bits/char, the same
positions for causal and prefix, NSP scored as trained."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from objective_models import V, tiny, token_data

from lmcore.data.tokenizers import CLS_ID, MASK_ID, N_SPECIAL, SEP_ID, train_tokenizer
from lmcore.models.transformer import Transformer, TransformerConfig
from lmcore.train.data import TokenData
from lmcore.train.fair_metrics import (
    Metric,
    causal_nats,
    eval_prefix_lengths,
    fair_metrics,
    pseudo_log_likelihood,
    span_chars,
    suffix_nats,
    table_rows,
)
from lmcore.train.objectives import LN2
from lmcore.train.one_budget import build_models


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


def _three(tok, **kw) -> dict[str, Transformer]:
    return {k: tiny(k if k != "masked" else "bidirectional", vocab_size=tok.vocab_size, **kw)
            for k in ("causal", "prefix", "masked")}


def test_fair_table_compares_same_positions():
    tok = train_tokenizer("char", "abcdefgh")
    data = token_data("abcdefgh" * 60, tok)
    rows = fair_metrics(_three(tok), data, context=8, tokenizer=tok, max_tokens=64)
    by = {(r.model, r.metric): r for r in rows}
    a, b = by[("causal", "suffix (same positions)")], by[("prefix", "suffix (same positions)")]
    assert a.tokens == b.tokens > 0 and a.chars == b.chars == a.tokens  # one char per token
    assert by[("causal", "full sequence")].tokens == 64
    pll = by[("masked", "pseudo-log-likelihood")]
    assert pll.pseudo and "[pseudo]" in pll.as_row()["scored"] and pll.tokens == 64
    acc = by[("masked", "masked tokens at 15%")]
    assert 0 <= acc.accuracy <= 1 and acc.chars is None and math.isnan(acc.bits_per_char)
    assert not any(r.kind == "nsp" for r in rows)  # no next-sentence head, no NSP row


def test_table_rows_put_each_kind_in_its_own_columns():
    rows = table_rows([
        Metric("causal", "full sequence", 10.0, 5, 20),
        Metric("masked", "pseudo-log-likelihood", 8.0, 5, 20, kind="pseudo"),
        Metric("masked", "masked tokens at 15%", 10.0, 5, None, kind="masked", accuracy=0.5),
        Metric("masked", "next-sentence prediction (4 held-out pairs)", 2.0, 4, None,
               kind="nsp", accuracy=0.75)])
    causal, pll, mlm, nsp = rows
    assert causal["bits/char"] == pytest.approx(10 / LN2 / 20)
    assert causal["per-token perplexity"] == pytest.approx(math.exp(2))
    assert causal["pseudo-perplexity"] is None and causal["masked-token perplexity"] is None
    assert pll["bits/token"] is None and pll["per-token perplexity"] is None
    assert pll["pseudo bits/char"] == pytest.approx(8 / LN2 / 20)
    assert pll["pseudo-perplexity"] == pytest.approx(math.exp(1.6))
    assert pll["scored"].endswith("[pseudo]")
    # exp(MLM loss) is not a per-token perplexity of the text and has no bits/char
    assert mlm["per-token perplexity"] is None and mlm["bits/char"] is None
    assert mlm["pseudo bits/char"] is None and mlm["characters"] is None
    assert mlm["masked-token perplexity"] == pytest.approx(math.exp(2))
    assert mlm["accuracy"] == 0.5
    assert {k for k, v in nsp.items() if v is not None} == {"model", "scored", "accuracy"}
    with pytest.raises(ValueError, match="kind"):
        Metric("causal", "x", 1.0, 1, kind="perplexity")


def test_bits_per_char_counts_the_characters_of_exactly_the_scored_tokens():
    rng = random.Random(0)
    long = ["internationalization", "extraordinarily", "responsibilities", "a"]
    short = ["a", "b", "of", "x", "to"]
    train_text = " ".join(rng.choice(long + short) for _ in range(600))
    # the held-out text starts with long words: the scored subset has more chars per token
    valid_text = (" ".join(rng.choice(long) for _ in range(30)) + " "
                  + " ".join(rng.choice(short) for _ in range(300)))
    tok = train_tokenizer("bpe", train_text, vocab_size=300)
    data = TokenData.from_text(tok, train_text, valid_text)
    models = _three(tok)
    rows = fair_metrics(models, data, context=8, tokenizer=tok, max_tokens=40)
    by = {(r.model, r.metric): r for r in rows}
    win = data.eval_windows(9, max_tokens=40)  # (N, 9)
    plen = eval_prefix_lengths(len(win), 8, seed=0)
    # ASCII text: each token decodes on its own to its own characters, an independent count
    chars = [[len(tok.decode([int(t)])) for t in row] for row in win]
    suffix = sum(sum(c[int(P):]) for c, P in zip(chars, plen, strict=True))
    full = sum(sum(c[1:]) for c in chars)
    a, b = by[("causal", "suffix (same positions)")], by[("prefix", "suffix (same positions)")]
    f = by[("causal", "full sequence")]
    assert a.chars == b.chars == suffix and f.chars == full
    assert f.bits_per_char == pytest.approx(f.nats / LN2 / full)
    whole_split = f.bits_per_token * data.tokens_per_char("valid")
    assert f.bits_per_char < 0.8 * whole_split  # the old whole-split ratio overstates it here
    pll = by[("masked", "pseudo-log-likelihood")]
    disjoint = data.valid[: (40 // 8) * 8]
    assert pll.chars == sum(len(tok.decode([int(t)])) for t in disjoint)


def test_span_characters_are_exact_when_a_character_spans_tokens():
    tok = train_tokenizer("bpe", "hello world " * 50, vocab_size=280)  # ö, ü are two bytes
    ids = torch.tensor(tok.encode("wörld über"))
    assert sum(len(tok.decode([int(i)])) for i in ids) > len("wörld über")  # split characters
    assert span_chars(tok, ids[None]) == len("wörld über")


def test_without_attention_causal_and_prefix_score_the_same_positions_identically():
    """Zeroed attention outputs: every position sees only itself, so the mask cannot matter."""
    tok = train_tokenizer("char", "abcdefgh")
    data = token_data("".join(random.Random(1).choice("abcdefgh") for _ in range(600)), tok)
    cfg = TransformerConfig(vocab_size=tok.vocab_size, context=12, n_layer=2, n_head=2,
                            n_embd=16)
    models = build_models(cfg, seed=1)
    pair = {k: models[k] for k in ("causal", "prefix")}
    before = fair_metrics(pair, data, context=12, tokenizer=tok, max_tokens=96)
    assert before[0].nats != before[1].nats  # with attention, context and mask matter
    with torch.no_grad():
        for m in pair.values():
            for block in m.h:
                block.attn.c_proj.weight.zero_()
                block.attn.c_proj.bias.zero_()
    rows = fair_metrics(pair, data, context=12, tokenizer=tok, max_tokens=96)
    causal, prefix = (r for r in rows if r.metric == "suffix (same positions)")
    assert causal.tokens == prefix.tokens and causal.nats == prefix.nats  # exactly
    # and both equal a loop over the targets w[i + 1], i >= P - 1, scored one by one
    win = data.eval_windows(13, max_tokens=96)
    plen = eval_prefix_lengths(len(win), 12, seed=0)
    ref = 0.0
    with torch.no_grad():
        for w, P in zip(win, plen.tolist(), strict=True):
            lp = torch.log_softmax(pair["causal"](w[None, :-1], mask="bidirectional")[0]
                                   .double(), -1)
            ref -= sum(float(lp[i, w[i + 1]]) for i in range(P - 1, 12))
    assert math.isclose(causal.nats, ref, rel_tol=1e-9)


def test_nsp_model_is_scored_on_wrapped_pairs_with_a_held_out_accuracy_row():
    tok = train_tokenizer("char", "abcdefgh")
    data = token_data("".join(random.Random(3).choice("abcdefgh") for _ in range(600)), tok)
    m = tiny("bidirectional", vocab_size=tok.vocab_size, nsp_head=True)  # context 16
    rows = fair_metrics({"masked": m}, data, context=16, tokenizer=tok, max_tokens=65)
    by = {r.kind: r for r in rows}
    pll, nsp = by["pseudo"], by["nsp"]
    assert pll.tokens == pll.chars == 5 * 13  # five windows of 13 text tokens, specials unscored
    la = (16 - 3) // 2
    ref = 0.0
    with torch.no_grad():
        for c in data.valid[:65].view(5, 13):
            x = torch.cat([torch.tensor([CLS_ID]), c[:la], torch.tensor([SEP_ID]), c[la:],
                           torch.tensor([SEP_ID])])
            for j in [j for j in range(16) if j not in (0, la + 1, 15)]:
                y = x.clone()
                y[j] = MASK_ID
                lp = torch.log_softmax(m(y[None], mask="bidirectional")[0, j].double(), -1)
                ref -= float(lp[x[j]])
    assert math.isclose(pll.nats, ref, rel_tol=1e-6)
    assert nsp.tokens == 4 and "4 held-out pairs" in nsp.metric  # 65 // 16 windows
    # a head that always answers "is next" is right exactly on the true continuations
    with torch.no_grad():
        m.nsp.weight.zero_()
        m.nsp.bias.copy_(torch.tensor([0.0, 5.0]))
    yes = {r.kind: r for r in fair_metrics({"masked": m}, data, 16, tokenizer=tok,
                                           max_tokens=160)}["nsp"]
    with torch.no_grad():
        m.nsp.bias.copy_(torch.tensor([5.0, 0.0]))
    no = {r.kind: r for r in fair_metrics({"masked": m}, data, 16, tokenizer=tok,
                                          max_tokens=160)}["nsp"]
    assert yes.tokens == 10 and 0 < yes.accuracy < 1
    assert yes.accuracy + no.accuracy == pytest.approx(1.0)
    n_true = round(yes.accuracy * yes.tokens)
    expect = n_true * math.log1p(math.exp(-5)) + (yes.tokens - n_true) * math.log1p(math.exp(5))
    assert yes.nats == pytest.approx(expect)
