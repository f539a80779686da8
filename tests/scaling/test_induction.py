"""The induction score is 1 for a perfect induction head and small for other heads."""

from __future__ import annotations

import pytest
import torch

from lmcore.scaling.induction import induction_scores, induction_targets
from lmcore.scaling.tasks import repeated_segments


def test_targets_follow_earlier_occurrences():
    r = repeated_segments(20, 24, 32, 3, 10, seed=1)
    tgt = induction_targets(r)  # (N, 23, 23)
    x = r.ids[:, :-1]
    for n in range(20):
        a, b, L = int(r.first_at[n]), int(r.again_at[n]), int(r.seg_len[n])
        assert tgt[n].any(-1).nonzero().flatten().tolist() == list(range(b, min(b + L, 23)))
        for q, k in tgt[n].nonzero().tolist():
            assert x[n, k - 1] == x[n, q] and k - 1 == a + q - b  # the key follows q's earlier
            # occurrence in the first copy
            if q < b + L - 1:
                assert r.ids[n, q + 1] == x[n, k]  # and holds the next token
    assert int(tgt.sum(-1).max()) == 1


def test_scores_of_a_perfect_head_a_previous_token_head_and_uniform():
    r = repeated_segments(16, 24, 32, 3, 10, seed=2)
    T = 23
    tgt = induction_targets(r)
    perfect = tgt.float()  # rows without a target attend nowhere: they are not scored
    prev = torch.zeros(16, T, T)
    prev[:, torch.arange(1, T), torch.arange(T - 1)] = 1.0  # attends to q - 1
    uniform = torch.tril(torch.ones(T, T))
    uniform = (uniform / uniform.sum(-1, keepdim=True)).expand(16, T, T)
    w = torch.stack([perfect, prev, uniform], dim=1)  # (N, 3, T, T)
    s = induction_scores([w], tgt)
    assert abs(s["L0H0"] - 1.0) < 1e-6
    assert s["L0H1"] == 0.0  # q - 1 is the target only when the copies are 2 apart (L >= 3)
    assert 0.03 < s["L0H2"] < 0.2
    from lmcore.scaling.induction import uniform_score

    assert abs(uniform_score(tgt) - s["L0H2"]) < 1e-6


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
    scored = InductionResult(vocab=8, rows=[{"step": 0, "scores": {
        "L0H0": 0.1, "L0H1": 0.05, "L1H0": 0.2, "L1H1": 0.3}}])
    assert scored.layer_scores() == pytest.approx({0: 0.15, 1: 0.5})
    assert phase_change(flat) is None and phase_change(sudden[:1]) is None


def test_uniform_bias_init_and_a_constant_rate_are_what_induction_trains_with():
    """GPT-2's zero biases stay the drill's default; `bias_init='uniform'` draws PyTorch's
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) biases, seeded, and a min_lr equal to lr holds the rate."""
    import math

    import pytest

    from lmcore.scaling.drill import DrillConfig, build
    from lmcore.train.trainer import TrainConfig

    plain = build(DrillConfig(n_embd=16, n_head=2), vocab_size=8)
    assert all(float(m.bias.detach().abs().max()) == 0 for m in plain.modules()
               if isinstance(m, torch.nn.Linear) and m.bias is not None)
    cfg = DrillConfig(n_embd=16, n_head=2, bias_init="uniform")
    a, b = build(cfg, vocab_size=8), build(cfg, vocab_size=8)
    fc = a.h[0].mlp.c_fc
    assert 0 < float(fc.bias.detach().abs().max()) <= 1 / math.sqrt(fc.in_features)
    assert torch.equal(fc.bias, b.h[0].mlp.c_fc.bias)  # the seed fixes them
    assert torch.equal(a.wte.weight, plain.wte.weight)  # weights as before
    tc = TrainConfig(steps=100, lr=3e-3, min_lr=3e-3, warmup_steps=20)
    assert tc.lr_at(21) == tc.lr_at(100) == 3e-3
    with pytest.raises(ValueError, match="bias_init"):
        build(DrillConfig(bias_init="normal"), vocab_size=8)


def test_the_map_is_the_best_heads_top_scoring_sequence_with_a_whole_copy(tmp_path):
    from lmcore.runs.store import RunStore
    from lmcore.scaling.induction import InductionConfig, induction
    from lmcore.scaling.tasks import Repeats

    cfg = InductionConfig(steps=3, n_embd=16, n_head=2, test_sequences=64)
    res = induction(cfg, store=RunStore(tmp_path / "runs.db"))
    a, b, L = res.first_at, res.again_at, res.seg_len
    assert 5 <= L and b + L <= cfg.T - 1  # the whole second copy is in the map's rows
    one = Repeats(torch.tensor([res.tokens + [0]]), torch.tensor([L]), torch.tensor([a]),
                  torch.tensor([b]))
    w = torch.tensor(res.attention)[None, None]  # (1, 1, T, T)
    assert abs(induction_scores([w], induction_targets(one))["L0H0"] - res.map_score) < 1e-5
    assert res.map_score >= res.final_scores()[res.best_head] - 1e-6  # the top one, not average
