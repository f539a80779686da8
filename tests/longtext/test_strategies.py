"""Long-text strategies: every token scored once, stride = window is disjoint, tiled = sdpa."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcore.data.tokenizers import train_tokenizer
from lmcore.longtext.strategies import (
    char_bounds,
    evaluate,
    max_window,
    plan_windows,
    stride_sweep,
    window_logprobs,
    with_attention,
)
from lmcore.models.lm import LN2, score_ids
from lmcore.models.ngram import NGramLM
from lmcore.models.transformer import Transformer, TransformerConfig, TransformerLM

TEXT = ("Long texts do not fit into a model's context. 长文本放不进上下文。 The sliding window "
        "gives every token some context; disjoint chunks do not. ") * 3
TOK = train_tokenizer("char", TEXT)


def _lm(context: int = 32, attention: str = "sdpa", seed: int = 0) -> TransformerLM:
    torch.manual_seed(seed)
    cfg = TransformerConfig(vocab_size=TOK.vocab_size, context=context, n_layer=1, n_head=2,
                            n_embd=16, attention=attention)
    return TransformerLM(Transformer(cfg), TOK)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 300), st.integers(1, 64), st.data())
def test_sliding_windows_score_every_token_exactly_once(n, window, data):
    stride = data.draw(st.integers(1, window))
    plan = plan_windows(n, "sliding", window, stride)
    counts = np.zeros(n, dtype=int)
    for w in plan:
        assert w.begin <= w.score_from <= w.end and w.end - w.begin <= window
        counts[w.score_from:w.end] += 1
    assert (counts == 1).all()
    assert all(w.context == window - stride for w in plan[1:])  # HF: W - S tokens of context
    assert [w.score_from for w in plan[1:]] == [w.end for w in plan[:-1]]


@given(st.integers(0, 300), st.integers(1, 64))
def test_stride_equal_to_window_is_disjoint_chunks(n, window):
    assert plan_windows(n, "sliding", window, window) == plan_windows(n, "disjoint", window)
    assert all(w.context == 0 for w in plan_windows(n, "disjoint", window))


def test_plan_arguments_are_checked():
    with pytest.raises(ValueError, match="stride"):
        plan_windows(10, "sliding", 4, 5)
    with pytest.raises(ValueError, match="stride"):
        plan_windows(10, "sliding", 4, None)
    with pytest.raises(ValueError, match="unknown strategy"):
        plan_windows(10, "random", 4)
    assert plan_windows(10, "truncation", 4) == plan_windows(4, "full", 4)


def _reference_bits(lm: TransformerLM, ids: list[int], plan) -> float:
    """Bits of each window straight from the network: [BOS] + window inputs, log-softmax."""
    total = 0.0
    with torch.no_grad():
        for w in plan:
            x = torch.tensor([[lm.bos_id] + ids[w.begin:w.end - 1]])
            lp = torch.log_softmax(lm.model(x).double(), dim=-1)[0]  # (T, V)
            tgt = torch.tensor(ids[w.begin:w.end])
            picked = lp[torch.arange(len(tgt)), tgt][w.context:]
            total += float(-picked.sum()) / LN2
    return total


@pytest.mark.parametrize("strategy, stride", [("sliding", 8), ("sliding", 3),
                                              ("disjoint", None), ("truncation", None)])
def test_bits_match_a_direct_forward_pass(strategy, stride):
    lm = _lm(context=32)
    ids = TOK.encode(TEXT)
    seen = []
    r = evaluate(lm, TOK, TEXT, strategy, window=32, stride=stride, on_window=seen.append)
    plan = plan_windows(len(ids), strategy, 32, stride)
    assert [(w.begin, w.score_from, w.end) for w in r.windows] == \
        [(w.begin, w.score_from, w.end) for w in plan]
    assert r.bits == pytest.approx(_reference_bits(lm, ids, plan), rel=1e-9)
    assert seen == r.windows and r.complete and r.attention == "tiled"
    if strategy == "truncation":
        assert r.tokens_scored == 32 and r.chars_scored == 32  # char tokenizer: 1 char/token
        assert r.bits == pytest.approx(score_ids(lm, ids[:32]).bits, rel=1e-9)
    else:
        assert r.tokens_scored == len(ids) and r.chars_scored == len(TEXT)
        assert r.coverage == 1.0


def test_stride_equal_to_context_equals_disjoint_bits():
    lm = _lm(context=32)
    a = evaluate(lm, TOK, TEXT, "sliding", stride=32)
    b = evaluate(lm, TOK, TEXT, "disjoint")
    assert a.bits == b.bits and a.bits_per_char == b.bits_per_char
    assert [w.bits for w in a.windows] == [w.bits for w in b.windows]
    c = evaluate(lm, TOK, TEXT, "sliding", stride=8)
    assert c.bits != a.bits  # the extra context does change the numbers


@pytest.mark.parametrize("strategy, stride", [("sliding", 8), ("full", None)])
def test_tiled_and_sdpa_give_the_same_bits_per_char(strategy, stride):
    n = len(TOK.encode(TEXT))
    lm = _lm(context=n if strategy == "full" else 32)
    tiled = evaluate(lm, TOK, TEXT, strategy, stride=stride, attention="tiled")
    sdpa = evaluate(lm, TOK, TEXT, strategy, stride=stride, attention="sdpa")
    naive = evaluate(lm, TOK, TEXT, strategy, stride=stride, attention="naive")
    assert (tiled.attention, sdpa.attention, naive.attention) == ("tiled", "sdpa", "naive")
    assert tiled.bits_per_char == pytest.approx(sdpa.bits_per_char, rel=1e-5)
    assert naive.bits_per_char == pytest.approx(sdpa.bits_per_char, rel=1e-5)
    assert lm.model.h[0].attn.impl == "sdpa"  # the caller's model is left as it was


def test_full_pass_equals_the_contract_and_needs_positions():
    ids = TOK.encode(TEXT)
    lm = _lm(context=len(ids))
    full = evaluate(lm, TOK, TEXT, "full")
    assert len(full.windows) == 1 and full.tokens_scored == len(ids)
    assert full.bits == pytest.approx(score_ids(lm, ids).bits, rel=1e-9)
    with pytest.raises(ValueError, match="positional embeddings"):
        evaluate(_lm(context=32), TOK, TEXT, "full")
    with pytest.raises(ValueError, match="context of 32"):
        evaluate(_lm(context=32), TOK, TEXT, "sliding", window=64, stride=8)


def test_with_attention_copies_and_checks():
    lm = _lm()
    assert with_attention(lm, "sdpa") is lm and max_window(lm) == 32
    twin = with_attention(lm, "tiled")
    assert twin is not lm and twin.model.h[0].attn.impl == "tiled"
    assert all(torch.equal(a, b) for a, b in zip(lm.model.parameters(),
                                                 twin.model.parameters(), strict=True))
    with pytest.raises(ValueError, match="attention"):
        with_attention(lm, "flash")


def test_memory_is_sampled_and_stop_ends_early():
    lm = _lm()
    samples = []
    stop = threading.Event()

    def on_window(ws):
        if ws.index == 2:
            stop.set()

    r = evaluate(lm, TOK, TEXT, "sliding", stride=4, on_window=on_window,
                 on_memory=lambda t, rss: samples.append((t, rss)), stop=stop)
    assert not r.complete and len(r.windows) == 3
    assert samples and all(rss > 0 for _, rss in samples)
    assert r.peak_rss >= max(rss for _, rss in samples) and r.peak_rss >= r.rss_start
    assert [t for t, _ in samples] == sorted(t for t, _ in samples)


def test_ngram_needs_a_window_and_scores_through_the_contract():
    lm = NGramLM.from_tokenizer(TOK, TEXT, order=3, smoothing="kn")
    assert max_window(lm) is None
    with pytest.raises(ValueError, match="window"):
        evaluate(lm, TOK, TEXT, "sliding", stride=4)
    r = evaluate(lm, TOK, TEXT, "sliding", window=16, stride=8)
    assert r.tokens_scored == len(TOK.encode(TEXT)) and r.attention is None
    assert 0 < r.bits_per_char < 8


def test_stride_sweep_runs_each_stride_once():
    rows = stride_sweep(_lm(), TOK, TEXT, [32, 8, 16, 8], attention="sdpa")
    assert [r.stride for r in rows] == [32, 16, 8]
    assert all(r.tokens_scored == len(TOK.encode(TEXT)) for r in rows)


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="ab 猫。é\n", min_size=1, max_size=60))
def test_char_bounds_partition_the_text_even_with_byte_tokens(text):
    tok = train_tokenizer("byte", "x")  # every non-ASCII character is several tokens
    ids, offsets = tok.encode_offsets(text)
    b = char_bounds(offsets, len(text))
    assert len(b) == len(ids) + 1 and b[0] == 0 and b[-1] == len(text)
    assert (np.diff(b) >= 0).all()


def test_transformer_window_path_equals_the_contract_in_head_chunks():
    lm = _lm(context=32)
    ids = TOK.encode(TEXT)[:30]
    for n_context in (0, 7, 29):
        direct = window_logprobs(lm, ids, n_context, head_rows=5)
        contract = lm.token_logprobs(ids)[n_context:]
        np.testing.assert_allclose(direct, contract, rtol=0, atol=1e-6)  # fp32 matmul order
    assert window_logprobs(lm, ids, 30).shape == (0,)


class _SlowModel(NGramLM):
    """An n-gram whose scoring takes a while, like a long full pass."""

    def token_logprobs(self, ids):
        time.sleep(0.5)
        return super().token_logprobs(ids)


def test_memory_samples_stream_while_a_long_window_runs():
    base = NGramLM.from_tokenizer(TOK, TEXT, order=2)
    slow = _SlowModel(base.config, base.vocab, base.keys, base.lp, base.bo, base.known)
    calls = []
    r = evaluate(slow, TOK, TEXT, "full", sample_interval=0.02,
                 on_memory=lambda t, rss: calls.append(("memory", time.perf_counter())),
                 on_window=lambda ws: calls.append(("window", time.perf_counter())))
    first_window = next(i for i, (kind, _) in enumerate(calls) if kind == "window")
    assert first_window >= 3, "RSS samples reached the callback only after the window ended"
    assert len(r.windows) == 1 and r.tokens_scored == len(TOK.encode(TEXT))
