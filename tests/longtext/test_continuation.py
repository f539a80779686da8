"""Partial processing: the continuation is written from the last window of the text only."""

from __future__ import annotations

import pytest
import torch

from lmcore.data.tokenizers import train_tokenizer
from lmcore.longtext.continuation import continue_text
from lmcore.models.ngram import NGramLM
from lmcore.models.transformer import Transformer, TransformerConfig, TransformerLM

TEXT = "abc" * 60
TOK = train_tokenizer("char", TEXT + "xyz")


def test_greedy_ngram_continues_the_pattern_from_the_last_window():
    lm = NGramLM.from_tokenizer(TOK, TEXT, order=3, smoothing="kn")
    out = continue_text(lm, TOK, TEXT + "ab", 6, window=10, temperature=0)
    assert out.text == "cabcab"
    assert out.context_tokens == 4 and out.context_text == (TEXT + "ab")[-4:]
    assert out.context_start == len(TEXT) + 2 - 4 and out.unseen_chars == out.context_start
    assert out.total_tokens == len(TEXT) + 2


def test_transformer_sees_only_its_last_window_and_is_seeded():
    torch.manual_seed(0)
    net = Transformer(TransformerConfig(vocab_size=TOK.vocab_size, context=32, n_layer=1,
                                        n_head=2, n_embd=16))
    lm = TransformerLM(net, TOK)
    long_text = "xyz " * 100
    a = continue_text(lm, TOK, long_text, 8, seed=3)
    b = continue_text(lm, TOK, long_text, 8, seed=3)
    assert a.text == b.text and a.ids == b.ids and len(a.ids) <= 8
    assert a.context_tokens == 32 - 8
    assert a.context_text == long_text[a.context_start:]
    assert len(TOK.encode(a.context_text)) == 24


def test_bad_requests_say_why():
    lm = NGramLM.from_tokenizer(TOK, TEXT, order=2)
    with pytest.raises(ValueError, match="shorter than the window"):
        continue_text(lm, TOK, TEXT, 10, window=10)
    with pytest.raises(ValueError, match="at least 1"):
        continue_text(lm, TOK, TEXT, 0, window=10)
    with pytest.raises(ValueError, match="empty"):
        continue_text(lm, TOK, "", 3, window=10)
    with pytest.raises(ValueError, match="window"):
        continue_text(lm, TOK, TEXT, 3)


def test_progress_per_token_and_stop_keeps_what_was_written():
    import threading

    lm = NGramLM.from_tokenizer(TOK, TEXT, order=3, smoothing="kn")
    seen = []
    out = continue_text(lm, TOK, TEXT, 5, window=10, temperature=0,
                        on_token=lambda done, total: seen.append((done, total)))
    assert seen == [(k, 5) for k in range(1, 6)] and len(out.ids) == 5
    stop = threading.Event()

    def halt(done, total):
        if done == 2:
            stop.set()

    cut = continue_text(lm, TOK, TEXT, 5, window=10, temperature=0, stop=stop, on_token=halt)
    assert cut.ids == out.ids[:2] and cut.text == out.text[:2]
