"""Training-dynamics comparisons: dead units counted right, norms removable, variants run."""

from __future__ import annotations

import pytest
import torch

from lmcore.models.transformer import TransformerConfig
from lmcore.train.data import TokenData
from lmcore.train.dynamics import COMPARISONS, build_model, dead_fraction, run_comparison
from lmcore.train.estimate import calibrate, step_seconds
from lmcore.train.objectives import CausalLM
from lmcore.train.trainer import TrainConfig

CFG = TransformerConfig(vocab_size=12, context=8, n_layer=2, n_head=2, n_embd=8,
                        activation="relu")


# One intra-op thread: on a busy shared machine two OpenMP threads stall for whole slices.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_dead_fraction_counts_units_never_positive():
    model = build_model(CFG)
    x = torch.randint(0, 12, (4, 8))
    with torch.no_grad():
        model.h[0].mlp.c_fc.bias.fill_(-1e3)  # every unit of layer 0 is dead
        model.h[1].mlp.c_fc.bias.fill_(1e3)  # every unit of layer 1 fires
        model.h[1].mlp.c_fc.bias[:8] = -1e3  # ... except 8 of 32
    assert dead_fraction(model, x) == [1.0, 0.25]


def test_norm_off_removes_every_norm():
    model = build_model(CFG, norm=False)
    kinds = {type(m).__name__ for m in model.modules()}
    assert "LayerNorm" not in kinds and "RMSNorm" not in kinds
    assert build_model(CFG)(torch.zeros(1, 8, dtype=torch.long)).shape == (1, 8, 12)


def test_run_comparison_trains_each_variant_with_the_same_budget():
    ids = [i % 12 for i in range(600)]
    data = TokenData.from_ids(ids[:500], ids[500:], 500, 100)
    seen = []
    out = run_comparison("clipping", CFG, TrainConfig(steps=3, batch_size=2, eval_every=0,
                                                      eval_tokens=16),
                         data, CausalLM(), on_event=lambda label, e: seen.append(label))
    assert [r.label for r in out] == [v.label for v in COMPARISONS["clipping"][1]]
    assert all(len(r.losses) == 3 and r.status == "done" for r in out)
    assert set(out[0].grad_norms) >= {"layer 0", "layer 1"} and len(out[0].dead_fraction) == 2
    assert set(seen) == {"clip at 1.0", "no clipping"}


def test_step_estimate_scales_with_flops():
    rate = calibrate(steps=1, batch=2, context=16)
    assert rate > 1e6
    small = step_seconds(build_model(CFG), 4, flops_per_s=rate)
    big = step_seconds(build_model(CFG), 8, flops_per_s=rate)
    assert big == 2 * small > 0
