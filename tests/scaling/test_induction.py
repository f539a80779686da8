"""The induction score is 1 for a perfect induction head and small for other heads."""

from __future__ import annotations

import torch

from lmcore.scaling.induction import induction_scores, induction_targets
from lmcore.scaling.tasks import repeated_segments


def test_targets_follow_earlier_occurrences():
    r = repeated_segments(20, 24, 8, 3, 8, seed=1)
    tgt = induction_targets(r.seg_len, 23)
    x = r.ids[:, :-1]
    for n in range(20):
        for t, k in tgt[n].nonzero().tolist():
            assert x[n, k - 1] == x[n, t]  # the key's previous token is the current token
            assert r.ids[n, t + 1] == x[n, k]  # and the key holds the next token


def test_scores_of_a_perfect_head_a_previous_token_head_and_uniform():
    r = repeated_segments(16, 24, 8, 3, 8, seed=2)
    T = 23
    tgt = induction_targets(r.seg_len, T).float()  # (N, T, T)
    perfect = tgt / tgt.sum(-1, keepdim=True).clamp(min=1)  # rows without targets stay 0
    prev = torch.zeros(16, T, T)
    prev[:, torch.arange(1, T), torch.arange(T - 1)] = 1.0  # attends to t - 1
    uniform = torch.tril(torch.ones(T, T))
    uniform = (uniform / uniform.sum(-1, keepdim=True)).expand(16, T, T)
    w = torch.stack([perfect, prev, uniform], dim=1)  # (N, 3, T, T)
    s = induction_scores([w], r.seg_len)
    assert abs(s["L0H0"] - 1.0) < 1e-6
    assert s["L0H1"] == 0.0  # t - 1 is never t + 1 - jL for L >= 3
    assert 0.05 < s["L0H2"] < 0.5
    from lmcore.scaling.induction import uniform_score

    assert abs(uniform_score(r.seg_len, T) - s["L0H2"]) < 1e-6
