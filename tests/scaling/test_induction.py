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


def test_phase_change_finds_a_sudden_drop_and_tells_it_from_a_gradual_one():
    from lmcore.scaling.induction import InductionResult, phase_change

    # plateau at 3.0 until step 400, a fall to 0.1 by step 500, flat after: 1000 steps
    sudden = [{"step": s, "repeat_loss": 3.0 if s <= 400 else max(0.1, 3.0 - 0.029 * (s - 400))}
              for s in range(0, 1001, 10)]
    pc = InductionResult(vocab=8, rows=sudden).phase_change()
    assert 400 < pc.start <= 420 and 480 <= pc.end <= 500
    assert pc.fraction < 0.1 and 400 <= pc.steepest[0] < pc.steepest[1] <= 500
    assert pc.start_loss > pc.end_loss and "steps" in pc.describe()
    gradual = [{"step": s, "repeat_loss": 3.0 - 0.0029 * s} for s in range(0, 1001, 10)]
    pc = phase_change(gradual)
    assert 90 <= pc.start <= 110 and 890 <= pc.end <= 910 and 0.75 < pc.fraction < 0.85
    flat = [{"step": s, "repeat_loss": 3.0 + 0.01 * (s % 20 == 0)} for s in range(0, 101, 10)]
    assert phase_change(flat) is None and phase_change(sudden[:1]) is None
