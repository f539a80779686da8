"""The tiny fallback Transformer trains through lmcore's trainer and runs tiled afterwards."""

from __future__ import annotations

import math

import pytest

from lmcore.data.tokenizers import train_tokenizer
from lmcore.longtext.quick_model import QuickModelConfig, train_quick_transformer
from lmcore.longtext.strategies import evaluate

TEXT = "the cat sat on the mat. the dog sat on the log. " * 40


def test_quick_model_trains_and_runs_tiled():
    tok = train_tokenizer("char", TEXT)
    cfg = QuickModelConfig(context=32, n_layer=1, n_head=2, n_embd=16, steps=5, batch_size=4)
    events = []
    lm, res = train_quick_transformer(TEXT[:1500], TEXT[1500:], tok, cfg,
                                      callback=events.append)
    assert res.status == "done" and res.steps == 5 and math.isfinite(res.bits_per_char)
    assert sum(1 for e in events if hasattr(e, "lr")) == 5  # one Step event per step
    assert lm.model.h[0].attn.impl == "tiled" and lm.config.context == 32
    r = evaluate(lm, tok, TEXT[:200], "sliding", stride=8)
    assert r.attention == "tiled" and r.tokens_scored == 200


def test_quick_model_refuses_a_too_short_validation_text():
    tok = train_tokenizer("char", TEXT)
    with pytest.raises(ValueError, match="shorter than one window"):
        train_quick_transformer(TEXT, "short", tok, QuickModelConfig(context=32))
