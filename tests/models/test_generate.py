"""Generation: the KV cache changes nothing but speed; sampling knobs behave."""

from __future__ import annotations

import pytest
import torch

from lmcore.models.generate import filter_logits, generate, generate_tokens
from lmcore.models.transformer import Transformer, TransformerConfig

V = 13


def tiny(**kw) -> Transformer:
    torch.manual_seed(0)
    base = dict(vocab_size=V, context=12, n_layer=2, n_head=2, n_embd=16)
    return Transformer(TransformerConfig(**{**base, **kw}))


@pytest.mark.parametrize("impl", ["sdpa", "naive", "tiled"])
def test_greedy_with_cache_equals_without(impl):
    m = tiny(attention=impl)
    prompt = torch.tensor([[2, 5, 6], [2, 7, 3]])
    a = generate_tokens(m, prompt, 20, temperature=0, use_cache=True, keep_logits=True)
    b = generate_tokens(m, prompt, 20, temperature=0, use_cache=False, keep_logits=True)
    assert torch.equal(a.ids, b.ids)  # 23 > context 12: the fallback path is exercised too
    torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=1e-4)
    assert a.cached_steps == 12 - 3 and b.cached_steps == 0
    assert a.ids.shape == (2, 23) and torch.equal(a.ids[:, :3], prompt)


def test_sampling_with_cache_equals_without_and_is_seeded():
    m = tiny()
    kw = dict(temperature=0.9, top_k=5, top_p=0.9, seed=3)
    a = generate(m, torch.tensor([[2]]), 10, **kw)
    assert torch.equal(a, generate(m, torch.tensor([[2]]), 10, use_cache=False, **kw))
    assert torch.equal(a, generate(m, torch.tensor([[2]]), 10, **kw))


def test_token_probabilities_match_the_model():
    m = tiny().eval()
    out = generate_tokens(m, torch.tensor([[2, 4]]), 5, seed=1)
    with torch.no_grad():
        p = torch.softmax(m(out.ids[:, :-1]), -1)[0, 1:]  # predictions for the 5 new tokens
    want = p.gather(-1, out.new[0, :, None])[:, 0]
    torch.testing.assert_close(out.probs[0], want, atol=1e-5, rtol=1e-4)


def test_filters():
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    z = filter_logits(logits, top_k=2)
    assert torch.isinf(z[0, :2]).all() and torch.isfinite(z[0, 2:]).all()
    p = torch.softmax(logits, -1)[0]  # 0.03, 0.09, 0.24, 0.64
    z = filter_logits(logits, top_p=0.7)  # 0.64 < 0.7, so the 0.24 token is kept too
    assert torch.isfinite(z[0]).tolist() == [False, False, True, True], p
    z = filter_logits(logits, top_p=0.5)
    assert torch.isfinite(z[0]).tolist() == [False, False, False, True]
    torch.testing.assert_close(filter_logits(logits, temperature=2.0), logits / 2)
    with pytest.raises(ValueError, match="temperature"):
        filter_logits(logits, temperature=0)


def test_top_k_one_is_greedy():
    m = tiny()
    a = generate(m, torch.tensor([[2, 3]]), 8, top_k=1, seed=5)
    assert torch.equal(a, generate(m, torch.tensor([[2, 3]]), 8, temperature=0))


def test_bad_requests():
    with pytest.raises(ValueError, match="bidirectional"):
        generate(tiny(mask="bidirectional"), torch.tensor([[2]]), 3)
    with pytest.raises(ValueError, match="at least one token"):
        generate(tiny(), torch.zeros(1, 0, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="top_p"):
        generate(tiny(), torch.tensor([[2]]), 3, top_p=1.5)


def test_kv_cache_timing_counts_every_step_and_the_context():
    from lmcore.models.generate import time_kv_cache, tokens_within_context

    m = tiny()  # context 12
    prompt = torch.tensor([[2, 3, 4]])
    t = time_kv_cache(m, prompt, 14, temperature=0.8, seed=3, repeats=2)
    assert t.identical and torch.equal(t.generation.ids, generate(m, prompt, 14, seed=3,
                                                                   temperature=0.8))
    assert {k: len(v) for k, v in t.seconds.items()} == {"cache": 14, "no cache": 14}
    assert all(s > 0 for v in t.seconds.values() for s in v)
    # steps 0..9 read 3..12 tokens (within the context); the last 4 re-encode a window
    assert t.within_context() == tokens_within_context(12, 3) == 10
    assert t.generation.cached_steps == 9  # step 0 is the prefill
    assert t.speedup(5) == pytest.approx(sum(t.seconds["no cache"][:5])
                                         / sum(t.seconds["cache"][:5]))


def test_generation_demo_samples_a_batch_and_both_paths_agree():
    from lmcore.app.jobs import JobContext
    from lmcore.app.objective_job import generation_job
    from lmcore.data.tokenizers import train_tokenizer

    tok = train_tokenizer("char", "abcde fghij")
    m = Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=12, n_layer=1,
                                      n_head=1, n_embd=8)).eval()
    demo = generation_job(m, tok, "ab", 6, temperature=1.0, seed=1, repeats=1, samples=5)(
        JobContext())
    assert len(demo.texts) == 5 and demo.text == demo.texts[0] and demo.identical
    assert len(set(demo.texts)) > 1  # five different samples, not one repeated
    assert {k: len(v) for k, v in demo.timing.seconds.items()} == {"cache": 6, "no cache": 6}
    with pytest.raises(ValueError, match="between 1 and 64"):
        generation_job(m, tok, "ab", 6, samples=0)
