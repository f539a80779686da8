"""Windows of token ids: seeded, in range, and evaluation windows cover each target once."""

from __future__ import annotations

import pytest
import torch

from lmcore.train.data import TokenData


def _data(n_train=100, n_valid=37):
    return TokenData.from_ids(list(range(n_train)), list(range(1000, 1000 + n_valid)),
                              n_train * 2, n_valid * 2)


def test_batches_are_seeded_contiguous_windows():
    d = _data()
    a = d.batch("train", 8, 10, torch.Generator().manual_seed(3))
    b = d.batch("train", 8, 10, torch.Generator().manual_seed(3))
    c = d.batch("train", 8, 10, torch.Generator().manual_seed(4))
    assert a.shape == (8, 10) and a.dtype == torch.long
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a[:, 1:] - a[:, :-1], torch.ones(8, 9, dtype=torch.long))
    assert int(a.min()) >= 0 and int(a.max()) <= 99


def test_eval_windows_predict_each_valid_token_once():
    d = _data()
    w = d.eval_windows(10)  # 36 targets, 9 per window -> 4 windows
    assert w.shape == (4, 10)
    targets = w[:, 1:].flatten().tolist()
    assert targets == list(range(1001, 1037))
    assert torch.equal(w[1:, 0], w[:-1, -1])  # seams share one token
    assert d.eval_windows(10, max_tokens=18).shape == (2, 10)


def test_tokens_per_char_and_fingerprint_from_text():
    class Chars:
        def encode(self, s):
            return [ord(c) for c in s]

    d = TokenData.from_text(Chars(), "hello world", "abc", fingerprint="f00")
    assert d.tokens_per_char("valid") == 1.0 and d.train_chars == 11
    assert d.fingerprint == "f00"


def test_too_short_split_says_what_to_do():
    d = _data(n_valid=5)
    with pytest.raises(ValueError, match="valid split has only 5 tokens.*smaller context"):
        d.check(10)
    with pytest.raises(ValueError, match="split must be"):
        d.ids("test")
