"""Objectives: no leakage, BERT's masking statistics, PLL equals a slow loop, token weighting,
exact bits/char, stop during scoring, NSP scored as trained, printable fills."""

from __future__ import annotations

import math
import random
import threading

import numpy as np
import pytest
import torch

import lmcore.models.attention as attention_module
from lmcore.data.tokenizers import train_tokenizer
from lmcore.models.transformer import Transformer, TransformerConfig
from lmcore.train.data import TokenData
from lmcore.train.effective_rank import attention_effective_ranks, effective_rank
from lmcore.train.fair_metrics import (
    Metric,
    Scoring,
    ScoringStopped,
    causal_nats,
    eval_prefix_lengths,
    fair_metrics,
    pseudo_log_likelihood,
    suffix_nats,
    table_rows,
)
from lmcore.train.fill_blanks import fill_blanks, fillable_ids, make_blanks
from lmcore.train.objectives import (
    CLS_ID,
    LN2,
    MASK_ID,
    N_SPECIAL,
    SEP_ID,
    CausalLM,
    MaskedLM,
    PrefixLM,
    make_objective,
    suffix_positions,
)
from lmcore.train.one_budget import build_models, train_and_score, work_plan
from lmcore.train.trainer import TrainConfig, train

V = 20
IMPLS = ("naive", "sdpa", "tiled")


def tiny(mask="causal", **kw) -> Transformer:
    torch.manual_seed(0)
    base = dict(vocab_size=V, context=16, n_layer=2, n_head=2, n_embd=16, mask=mask)
    return Transformer(TransformerConfig(**{**base, **kw})).eval()


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


def _three(tok, **kw) -> dict[str, Transformer]:
    return {k: tiny(k if k != "masked" else "bidirectional", vocab_size=tok.vocab_size, **kw)
            for k in ("causal", "prefix", "masked")}


def test_fair_table_compares_same_positions():
    tok = train_tokenizer("char", "abcdefgh")
    data = _data("abcdefgh" * 60, tok)
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
    from lmcore.train.fair_metrics import span_chars

    tok = train_tokenizer("bpe", "hello world " * 50, vocab_size=280)  # ö, ü are two bytes
    ids = torch.tensor(tok.encode("wörld über"))
    assert sum(len(tok.decode([int(i)])) for i in ids) > len("wörld über")  # split characters
    assert span_chars(tok, ids[None]) == len("wörld über")


def test_without_attention_causal_and_prefix_score_the_same_positions_identically():
    """Zeroed attention outputs: every position sees only itself, so the mask cannot matter."""
    tok = train_tokenizer("char", "abcdefgh")
    data = _data("".join(random.Random(1).choice("abcdefgh") for _ in range(600)), tok)
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
    runs = {n: train_and_score(n, m, data, tcfg, tokenizer=tok)
            for n, m in build_models(cfg).items()}
    suffix = [r for run in runs.values() for r in run.metrics if r.metric.startswith("suffix")]
    assert len(suffix) == 2 and suffix[0].tokens == suffix[1].tokens
    assert runs["masked"].metrics[0].pseudo
    assert all(run.ranks.shape == (1, 2) and run.result.status == "done"
               for run in runs.values())


# --- stop and progress during scoring ---------------------------------------------------------

def _setup(nsp=False, context=8, eval_tokens=48):
    tok = train_tokenizer("char", "abcdefgh")
    data = _data("".join(random.Random(2).choice("abcdefgh") for _ in range(900)), tok)
    cfg = TransformerConfig(vocab_size=tok.vocab_size, context=context, n_layer=1, n_head=2,
                            n_embd=16)
    tcfg = TrainConfig(steps=2, batch_size=4, eval_every=0, eval_tokens=eval_tokens,
                       memory_every=0)
    return tok, data, build_models(cfg, nsp=nsp), tcfg


def test_a_stop_set_before_training_skips_scoring():
    tok, data, models, tcfg = _setup()
    stop = threading.Event()
    stop.set()
    events = []
    run = train_and_score("masked", models["masked"], data, tcfg, tokenizer=tok,
                          callback=events.append, stop=stop)
    assert run.status == "stopped" and run.metrics == [] and run.ranks is None
    assert run.result.steps == 0
    assert not any(isinstance(e, Scoring) for e in events)


def test_a_stop_during_scoring_ends_it_at_the_next_batch():
    tok, data, models, tcfg = _setup(eval_tokens=400)
    stop = threading.Event()
    events = []

    def callback(e):
        events.append(e)
        if isinstance(e, Scoring) and e.done > 0:
            stop.set()  # the job's Stop button or its time limit, during the first stage

    run = train_and_score("masked", models["masked"], data, tcfg, tokenizer=tok,
                          callback=callback, stop=stop)
    assert run.status == "stopped" and run.metrics == [] and run.ranks is None
    scoring = [e for e in events if isinstance(e, Scoring)]
    assert events[-1] is scoring[-1] and scoring[-1].done < scoring[-1].total
    assert sum(e.done > 0 for e in scoring) == 1  # no batch ran after the stop
    with pytest.raises(ScoringStopped):
        fair_metrics({"causal": models["causal"]}, data, 8, tokenizer=tok, stop=stop)


@pytest.mark.parametrize("name,nsp", [("causal", False), ("prefix", False), ("masked", True)])
def test_scoring_progress_counts_up_to_the_planned_work(name, nsp):
    tok, data, models, tcfg = _setup(nsp=nsp)
    events = []
    run = train_and_score(name, models[name], data, tcfg, tokenizer=tok, nsp=nsp,
                          callback=events.append)
    assert run.status == "done" and run.metrics
    scoring = [e for e in events if isinstance(e, Scoring)]
    done = [e.done for e in scoring]
    assert done == sorted(done) and done[-1] == scoring[-1].total
    assert scoring[-1].total == work_plan(name, data, tcfg, 8, nsp)[1]
    assert scoring[-1].stage.endswith("attention effective rank")


# --- next-sentence prediction: scored the way it was trained --------------------------------

def test_nsp_model_is_scored_on_wrapped_pairs_with_a_held_out_accuracy_row():
    tok = train_tokenizer("char", "abcdefgh")
    data = _data("".join(random.Random(3).choice("abcdefgh") for _ in range(600)), tok)
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


class _Recording(torch.nn.Module):
    """A model wrapper that keeps every input it is given and can push some logits up."""

    def __init__(self, inner: Transformer, boost: dict[int, float] | None = None):
        super().__init__()
        self.inner, self.config, self.nsp = inner, inner.config, inner.nsp
        self.seen: list[torch.Tensor] = []
        self.bias = torch.zeros(inner.config.vocab_size)
        for i, v in (boost or {}).items():
            self.bias[i] = v

    def forward(self, x, **kw):
        self.seen.append(x.clone())
        return self.inner(x, **kw) + self.bias


def test_fill_with_an_nsp_model_reads_cls_a_sep_b_sep():
    tok = train_tokenizer("char", "abcde")
    rec = _Recording(tiny("bidirectional", vocab_size=tok.vocab_size, nsp_head=True))
    filled, probs = fill_blanks(rec, tok, "ab_de", "masked")
    a, b, d, e = tok.encode("abde")
    assert rec.seen[0][0].tolist() == [CLS_ID, a, b, SEP_ID, MASK_ID, d, e, SEP_ID]
    assert len(filled) == 5 and filled.startswith("ab") and filled.endswith("de")
    assert "[" not in filled and len(probs) == 1


# --- fills are printable text ----------------------------------------------------------------

def test_blanks_are_never_filled_with_byte_fallback_or_unseen_tokens():
    tok = train_tokenizer("char", "abc abc")
    stray = N_SPECIAL + 0xE4  # <0xE4>: half a character, decodes to "\ufffd"
    unseen = N_SPECIAL + ord("A")  # <0x41>: decodes to "A" but never occurs in training
    assert tok.decode([stray]) == "\ufffd" and tok.decode([unseen]) == "A"
    printable = fillable_ids(tok)
    assert not printable[:N_SPECIAL].any() and not printable[stray] and printable[unseen]
    seen = fillable_ids(tok, torch.tensor(tok.encode("abc abc")))
    assert seen.sum() == 4 and not seen[unseen]  # a, b, c and the space
    for kind, mask in (("masked", "bidirectional"), ("prefix", "prefix"), ("causal", "causal")):
        rec = _Recording(tiny(mask, vocab_size=tok.vocab_size),
                         boost={stray: 50.0, unseen: 40.0})
        filled, probs = fill_blanks(rec, tok, "a_c", kind)
        assert "\ufffd" not in filled and filled == "aAc", (kind, filled)
        filled, probs = fill_blanks(rec, tok, "a_c", kind, allowed=seen)
        assert filled[1] in "abc " and probs[0][0] in ("a", "b", "c", "␣"), (kind, filled)
